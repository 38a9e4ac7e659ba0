//! Key administration: list, add, remove, disable, enable, reset, verify.

use std::sync::Arc;

use chrono::Duration;
use http::StatusCode;
use shared::admin::{self as api, ErrorBody};

use super::{AdminError, Reply, blocking, fail, key_ref, ok, rfc3339};
use crate::keypool::{KeyEntry, KeyKind, KeyState, Labels, labels};
use crate::state::State;

pub(super) async fn list_keys(state: &Arc<State>, filter: Option<String>) -> Reply {
    if let Some(f) = &filter
        && !["active", "cooling", "invalid", "disabled"].contains(&f.as_str())
    {
        return Err(fail(
            StatusCode::BAD_REQUEST,
            format!("unknown state {f:?}: use active, cooling, invalid or disabled"),
        ));
    }
    let now = state.now();
    let store = state.store.clone();
    let usage = blocking(move || store.key_usage(now - Duration::hours(24))).await?;
    let resources = state.affinity.counts(now);
    let cfg = state.config.load();
    let views: Vec<api::KeyView> = state
        .pool
        .snapshot()
        .iter()
        .map(|k| {
            let h = k.health();
            let u = usage.get(&k.id).cloned().unwrap_or_default();
            let cooldowns: Vec<api::CooldownView> = h
                .cooldowns()
                .iter()
                .filter(|(_, c)| c.until > now)
                .map(|(model, c)| api::CooldownView {
                    model: model.clone(),
                    until: rfc3339(c.until),
                    reason: c.reason.as_str().into(),
                })
                .collect();
            let l = &k.labels;
            api::KeyView {
                id: k.id,
                key: shared::redact(k.secret.expose()),
                kind: l.kind.as_str().into(),
                group: l.group.clone(),
                project: l.project.clone(),
                note: l.note.clone(),
                proxy: crate::upstream::proxy_of(&cfg.upstream, k.id).map(crate::secret::redact_url),
                state: h.display_state(now).into(),
                failures: h.failures(),
                cooling_until: h.cooldowns().values().map(|c| c.until).filter(|u| *u > now).max().map(rfc3339),
                cooldowns,
                last_used: u.last_used.map(rfc3339),
                requests_24h: u.requests,
                errors_24h: u.errors,
                last_error: h.last_error().map(shared::redact_keys_in),
                resources: resources.get(&k.id).copied().unwrap_or(0),
            }
        })
        .filter(|v| filter.as_deref().is_none_or(|f| v.state == f))
        .collect();
    Ok(ok(&views))
}

pub(super) async fn add_keys(state: &Arc<State>, req: api::AddKeysRequest) -> Reply {
    let bad = |e: labels::LabelError| fail(StatusCode::BAD_REQUEST, e.0);
    let relabel = labels::Relabel::of(&req.labels).map_err(bad)?;
    let kind = req.kind.as_deref().map(KeyKind::parse).transpose().map_err(bad)?.unwrap_or_default();
    let labels = relabel.apply(&Labels { kind, ..Labels::default() });
    let mut valid = Vec::with_capacity(req.keys.len());
    let mut malformed = req.malformed;
    for k in req.keys {
        let k = k.trim().to_string();
        if shared::admin::is_plain_key(&k) {
            valid.push(k);
        } else {
            malformed += 1;
        }
    }
    let store = state.store.clone();
    let now = state.now();
    let count = valid.len() as u64;
    let (added, duplicates) = blocking(move || store.add_keys(&valid, &labels, false, now)).await?;
    let added_n = added.len() as u64;
    state.pool.insert(
        added
            .into_iter()
            .map(|r| KeyEntry::new(r.id, crate::secret::Secret::new(r.key), r.health).with_labels(r.labels))
            .collect(),
    );
    tracing::info!("keys added: {added_n}, duplicates: {duplicates}, malformed: {malformed}");
    debug_assert_eq!(added_n + duplicates, count);
    Ok(ok(&api::AddKeysResponse { added: added_n, duplicates, malformed }))
}

/// Resolves KEY arguments (numeric ids or unique tails of 4+ characters) and `--all`/`--invalid`.
pub(super) fn select(state: &State, sel: &api::KeySelection) -> Result<Vec<Arc<KeyEntry>>, AdminError> {
    let keys = state.pool.snapshot();
    let mut out: Vec<Arc<KeyEntry>> = Vec::new();
    let mut push = |k: &Arc<KeyEntry>| {
        if !out.iter().any(|o| o.id == k.id) {
            out.push(k.clone());
        }
    };
    if sel.all {
        keys.iter().for_each(&mut push);
    }
    if sel.invalid {
        keys.iter().filter(|k| k.read(|h| h.state() == KeyState::Invalid)).for_each(&mut push);
    }
    for arg in &sel.keys {
        let arg = arg.trim();
        // A number is an id when such an id exists; otherwise a numeric tail of 4+ characters.
        if !arg.is_empty() && arg.bytes().all(|b| b.is_ascii_digit()) {
            if let Some(k) = arg.parse::<i64>().ok().and_then(|id| keys.iter().find(|k| k.id == id)) {
                push(k);
                continue;
            }
            if arg.len() < 4 {
                return Err(fail(StatusCode::NOT_FOUND, format!("no key with id {arg}")));
            }
        }
        if arg.chars().count() < 4 {
            return Err(fail(
                StatusCode::BAD_REQUEST,
                format!("{arg:?}: give a numeric id or at least the last 4 characters of a key"),
            ));
        }
        let matches: Vec<&Arc<KeyEntry>> = keys.iter().filter(|k| k.secret.expose().ends_with(arg)).collect();
        match matches.as_slice() {
            [] => {
                return Err(fail(StatusCode::NOT_FOUND, format!("no key ends with {:?}", shared::redact_keys_in(arg))));
            }
            [k] => push(k),
            many => {
                return Err(AdminError {
                    status: StatusCode::CONFLICT,
                    body: ErrorBody {
                        error: format!(
                            "{} keys end with {:?}; give more characters or an id",
                            many.len(),
                            shared::redact_keys_in(arg)
                        ),
                        candidates: many.iter().map(|k| key_ref(k)).collect(),
                    },
                });
            }
        }
    }
    Ok(out)
}

fn require_some(sel: &api::KeySelection, what: &str) -> Result<(), AdminError> {
    if sel.keys.is_empty() && !sel.all && !sel.invalid {
        return Err(fail(StatusCode::BAD_REQUEST, format!("name the keys to {what} (ids or tails), or use --all")));
    }
    Ok(())
}

pub(super) async fn remove_keys(state: &Arc<State>, sel: api::KeySelection) -> Reply {
    require_some(&sel, "remove")?;
    let keys = select(state, &sel)?;
    let owned = state.affinity.counts(state.now());
    let holding: Vec<String> = keys
        .iter()
        .filter_map(|k| owned.get(&k.id).map(|n| format!("#{} ({}) owns {n} live resource(s)", k.id, key_ref(k).key)))
        .collect();
    if !sel.force && !holding.is_empty() {
        return Err(fail(
            StatusCode::CONFLICT,
            format!(
                "{}; they could not be used any more. Delete them first, or remove anyway with --force",
                holding.join(", ")
            ),
        ));
    }
    let ids: Vec<i64> = keys.iter().map(|k| k.id).collect();
    let store = state.store.clone();
    let removed = ids.clone();
    blocking(move || store.remove_keys(&removed)).await?;
    state.pool.remove(&ids);
    Ok(ok(&keys.iter().map(|k| key_ref(k)).collect::<Vec<_>>()))
}

/// `gbctl keys set`: the labels given, on every key named, saved before they take effect.
pub(super) async fn set_labels(state: &Arc<State>, req: api::SetKeysRequest) -> Reply {
    let bad = |e: labels::LabelError| fail(StatusCode::BAD_REQUEST, e.0);
    let change = labels::Relabel::of(&req.labels).map_err(bad)?;
    if change.is_empty() {
        return Err(fail(
            StatusCode::BAD_REQUEST,
            "nothing to set: give --group, --project or --note (\"\" clears one)",
        ));
    }
    let sel = api::KeySelection { keys: req.keys, ..Default::default() };
    require_some(&sel, "label")?;
    let keys = select(state, &sel)?;
    let labelled: Vec<(i64, Labels)> = keys.iter().map(|k| (k.id, change.apply(&k.labels))).collect();
    let store = state.store.clone();
    let (saved, now) = (labelled.clone(), state.now());
    blocking(move || store.set_labels(&saved, now)).await?;
    for (id, l) in labelled {
        state.pool.relabel(id, l);
    }
    Ok(ok(&keys.iter().map(|k| key_ref(k)).collect::<Vec<_>>()))
}

pub(super) async fn set_disabled(state: &State, sel: api::KeySelection, disable: bool) -> Reply {
    require_some(&sel, if disable { "disable" } else { "enable" })?;
    let keys = select(state, &sel)?;
    for k in &keys {
        let before = k.health();
        let changed = if disable { state.pool.disable(k) } else { state.pool.enable(k) };
        commit(state, k, before, changed).await?;
    }
    Ok(ok(&keys.iter().map(|k| key_ref(k)).collect::<Vec<_>>()))
}

pub(super) async fn reset(state: &State, sel: api::KeySelection) -> Reply {
    require_some(&sel, "reset")?;
    let keys = select(state, &sel)?;
    for k in &keys {
        let before = k.health();
        let changed = state.pool.reset(k);
        commit(state, k, before, changed).await?;
    }
    Ok(ok(&keys.iter().map(|k| key_ref(k)).collect::<Vec<_>>()))
}

/// An operator's change is acknowledged only once it is in the database; one that cannot be
/// saved is undone and answered with the reason.
async fn commit(
    state: &State,
    key: &KeyEntry,
    before: crate::keypool::Health,
    changed: Option<crate::keypool::Health>,
) -> Result<(), AdminError> {
    let Some(h) = changed else { return Ok(()) };
    state.logbook.health_committed(key.id, h).await.map_err(|e| {
        state.pool.revert(key, before);
        fail(StatusCode::INTERNAL_SERVER_ERROR, format!("key #{} not saved, nothing changed: {e}", key.id))
    })
}

pub(super) async fn verify(state: &Arc<State>, sel: api::KeySelection) -> Reply {
    // With no KEY and no flag, verify every key.
    let sel = if sel.keys.is_empty() && !sel.invalid { api::KeySelection { all: true, ..sel } } else { sel };
    let keys = select(state, &sel)?;
    Ok(ok(&crate::verify::verify_keys(state, keys).await))
}
