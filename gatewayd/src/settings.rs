//! Runtime settings: the layer above file and environment that `gbctl settings` changes with no
//! restart. One loader serves both boot and `check-config`, so the two always agree on the
//! effective configuration; one writer validates, persists, then swaps the live snapshot.

use std::collections::BTreeMap;

use parking_lot::Mutex;

use crate::config::{self, Config, ConfigError, Layers};
use crate::live::Live;

/// Why a runtime change was refused.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError<E> {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Persist(E),
}

pub struct Settings {
    layers: Layers,
    /// Runtime settings (name → TOML value), as last committed.
    runtime: Mutex<BTreeMap<String, toml::Value>>,
    /// Serializes changes (validate, persist, swap) so two at once cannot lose one. The hot path
    /// never takes it.
    writer: tokio::sync::Mutex<()>,
    /// Signalled after a change, so scheduled jobs pick up new schedules.
    changed: tokio::sync::Notify,
}

/// The effective configuration from the layers and the settings stored in the database: a stored
/// name that is not a field or not TOML is ignored, and one that no longer validates (after an
/// upgrade, say) is dropped, one at a time, rather than keeping the daemon from starting. Returns
/// the configuration and the runtime settings kept.
pub fn effective(
    layers: &Layers,
    stored: impl IntoIterator<Item = (String, String)>,
) -> Result<(Config, BTreeMap<String, toml::Value>), ConfigError> {
    let mut runtime = BTreeMap::new();
    for (name, literal) in stored {
        match config::parse_literal(&literal) {
            Ok(v) if config::find_field(&name).is_some() => {
                runtime.insert(name, v);
            }
            _ => tracing::warn!("ignoring stored setting {name}: not a known field or not a TOML value"),
        }
    }
    loop {
        match layers.resolve(&runtime) {
            Ok(c) => return Ok((c, runtime)),
            Err(e) if runtime.remove(&e.field).is_some() => {
                tracing::warn!("ignoring stored setting {}: {}", e.field, e.message);
            }
            Err(e) => return Err(e),
        }
    }
}

impl Settings {
    pub fn new(layers: Layers, runtime: BTreeMap<String, toml::Value>) -> Self {
        Settings {
            layers,
            runtime: Mutex::new(runtime),
            writer: tokio::sync::Mutex::new(()),
            changed: tokio::sync::Notify::new(),
        }
    }

    pub fn layers(&self) -> &Layers {
        &self.layers
    }

    /// Where a field's value comes from: `default`, `file`, `env` or `runtime`.
    pub fn source(&self, name: &str) -> &'static str {
        self.layers.source(name, &self.runtime.lock())
    }

    /// Resolves when a setting changes (after a call made before the change).
    pub fn changed(&self) -> tokio::sync::futures::Notified<'_> {
        self.changed.notified()
    }

    /// Sets (`Some`) or unsets (`None`) one runtime setting: validated with the config file's rules
    /// and `check`, persisted by `persist` (given the TOML literal to store, or `None` to remove),
    /// and only then swapped into `live`, so what is acknowledged is committed.
    pub async fn change<E>(
        &self,
        live: &Live<Config>,
        name: &str,
        value: Option<toml::Value>,
        check: impl FnOnce(&Config) -> Result<(), String>,
        persist: impl AsyncFnOnce(Option<String>) -> Result<(), E>,
    ) -> Result<(), ChangeError<E>> {
        let _writer = self.writer.lock().await;
        let mut next = self.runtime.lock().clone();
        let literal = value.as_ref().map(toml::Value::to_string);
        match value {
            Some(v) => next.insert(name.to_string(), v),
            None => next.remove(name),
        };
        let config = self.layers.resolve(&next).map_err(|e| ChangeError::Invalid(e.to_string()))?;
        check(&config).map_err(ChangeError::Invalid)?;
        persist(literal).await.map_err(ChangeError::Persist)?;
        *self.runtime.lock() = next;
        live.store(config);
        self.changed.notify_waiters();
        tracing::info!("setting {name} changed at runtime");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layers() -> Layers {
        Layers::from_parts(None, BTreeMap::new()).unwrap()
    }

    #[test]
    fn stored_settings_that_no_longer_apply_are_dropped_one_by_one() {
        let stored = vec![
            ("keys.max_retries".to_string(), "5".to_string()),
            ("keys.gone".to_string(), "1".to_string()),
            ("upstream.timeout_secs".to_string(), "0".to_string()),
            ("logs.request_retention_days".to_string(), "[not toml".to_string()),
        ];
        let (config, runtime) = effective(&layers(), stored).unwrap();
        assert_eq!(config.keys.max_retries, 5);
        assert_eq!(config.upstream.timeout_secs, Config::default().upstream.timeout_secs);
        assert_eq!(runtime.keys().collect::<Vec<_>>(), vec!["keys.max_retries"]);
    }

    #[tokio::test]
    async fn a_change_is_swapped_in_only_after_it_is_persisted() {
        let settings = Settings::new(layers(), BTreeMap::new());
        let live = Live::new(Config::default());
        let failed = settings
            .change(&live, "keys.max_retries", Some(toml::Value::Integer(7)), |_| Ok(()), async |_| Err("disk full"))
            .await;
        assert!(matches!(failed, Err(ChangeError::Persist("disk full"))));
        assert_eq!(live.load().keys.max_retries, Config::default().keys.max_retries);
        assert_eq!(settings.source("keys.max_retries"), "default");
        let invalid = settings
            .change(
                &live,
                "upstream.timeout_secs",
                Some(toml::Value::Integer(0)),
                |_| Ok(()),
                async |_| Ok::<_, ()>(()),
            )
            .await;
        assert!(matches!(invalid, Err(ChangeError::Invalid(m)) if m.contains("upstream.timeout_secs")));
        let mut stored = None;
        settings
            .change(
                &live,
                "keys.max_retries",
                Some(toml::Value::Integer(7)),
                |_| Ok(()),
                async |l| {
                    stored = l;
                    Ok::<_, ()>(())
                },
            )
            .await
            .unwrap();
        assert_eq!((live.load().keys.max_retries, stored.as_deref()), (7, Some("7")));
        assert_eq!(settings.source("keys.max_retries"), "runtime");
    }
}
