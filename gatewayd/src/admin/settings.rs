//! Runtime settings: list, get, set, unset.

use std::sync::Arc;

use http::StatusCode;
use shared::admin::{self as api};

use super::{AdminError, Reply, blocking, fail, ok};
use crate::config::{self, FIELDS, find_field};
use crate::settings::ChangeError;
use crate::state::State;

fn setting_view(state: &State, name: &str) -> Option<api::SettingView> {
    let field = find_field(name)?;
    let config = state.config.load();
    Some(api::SettingView {
        name: field.name.into(),
        value: config::field_value(&config, field.name).unwrap_or_default(),
        source: state.settings.source(field.name).into(),
        hot: field.hot,
    })
}

pub(super) fn settings_list(state: &State) -> Vec<api::SettingView> {
    FIELDS.iter().filter_map(|f| setting_view(state, f.name)).collect()
}

fn unknown_setting(name: &str) -> AdminError {
    fail(StatusCode::NOT_FOUND, format!("unknown setting {name:?}; `gbctl settings list` shows every name"))
}

pub(super) fn setting_get(state: &State, name: &str) -> Reply {
    setting_view(state, name).map(|v| ok(&v)).ok_or_else(|| unknown_setting(name))
}

pub(super) async fn setting_set(state: &Arc<State>, name: &str, req: api::SetSettingRequest) -> Reply {
    let field = find_field(name).ok_or_else(|| unknown_setting(name))?;
    if !field.hot {
        return Err(fail(
            StatusCode::BAD_REQUEST,
            format!("{name} is not hot: change it in the config file or environment and restart gatewayd"),
        ));
    }
    let value = config::parse_literal(&req.value).map_err(|e| fail(StatusCode::BAD_REQUEST, format!("{name}: {e}")))?;
    apply_runtime(state, name, Some(value)).await?;
    setting_get(state, name)
}

pub(super) async fn setting_unset(state: &Arc<State>, name: &str) -> Reply {
    find_field(name).ok_or_else(|| unknown_setting(name))?;
    apply_runtime(state, name, None).await?;
    setting_get(state, name)
}

/// Validates a runtime change, persists it, then swaps the snapshot the next request reads.
async fn apply_runtime(state: &Arc<State>, name: &str, value: Option<toml::Value>) -> Result<(), AdminError> {
    let no_token_left = |c: &crate::config::Config| match c.auth.tokens.is_empty() && state.generated_tokens.is_empty()
    {
        true => Err("auth.tokens: refusing a change that leaves no client token".to_string()),
        false => Ok(()),
    };
    let persist = async |literal: Option<String>| {
        let store = state.store.clone();
        let (key, now) = (name.to_string(), state.now());
        blocking(move || match literal {
            Some(l) => store.set_setting(&key, &l, now),
            None => store.unset_setting(&key).map(|_| ()),
        })
        .await
    };
    state.settings.change(&state.config, name, value, no_token_left, persist).await.map_err(|e| match e {
        ChangeError::Invalid(m) => fail(StatusCode::BAD_REQUEST, m),
        ChangeError::Persist(e) => e,
    })
}
