//! `gbctl keys ...`.

use std::io::Read;

use shared::admin::{self as api, AddKeysRequest, AddKeysResponse, KeyRef, KeySelection, KeyView, VerifyResult};

use super::{Ctx, Outcome};
use crate::cli::KeysCommand;
use crate::client::{ClientError, encode};
use crate::output::{clip, emit, json, opt, table};

pub async fn run(ctx: &Ctx, cmd: KeysCommand) -> Outcome {
    match cmd {
        KeysCommand::List { state } => list(ctx, state).await,
        KeysCommand::Add { keys, file } => add(ctx, keys, file).await,
        KeysCommand::Remove { mut keys, mut force } => {
            // KEY arguments may begin with `-`, so a `--force` after them arrives as a "key".
            let before = keys.len();
            keys.retain(|k| k != "--force");
            force |= keys.len() != before;
            act(ctx, api::KEYS_REMOVE, "removed", KeySelection { force, ..select(keys, false, false) }).await
        }
        KeysCommand::Disable { keys } => act(ctx, api::KEYS_DISABLE, "disabled", select(keys, false, false)).await,
        KeysCommand::Enable { keys } => act(ctx, api::KEYS_ENABLE, "enabled", select(keys, false, false)).await,
        KeysCommand::Reset { keys, all } => act(ctx, api::KEYS_RESET, "reset", select(keys, all, false)).await,
        KeysCommand::Verify { keys, all, invalid } => verify(ctx, select(keys, all, invalid)).await,
    }
}

fn select(keys: Vec<String>, all: bool, invalid: bool) -> KeySelection {
    KeySelection { keys, all, invalid, force: false }
}

async fn list(ctx: &Ctx, state: Option<String>) -> Outcome {
    let path = match &state {
        Some(s) => format!("{}?state={}", api::KEYS, encode(s)),
        None => api::KEYS.to_string(),
    };
    let keys: Vec<KeyView> = ctx.client.get(&path).await?;
    if ctx.json() {
        json(&keys);
        return Ok(0);
    }
    let rows = keys
        .iter()
        .map(|k| {
            vec![
                k.id.to_string(),
                k.key.clone(),
                k.state.clone(),
                k.failures.to_string(),
                opt(&k.cooling_until),
                opt(&k.last_used),
                k.requests_24h.to_string(),
                k.errors_24h.to_string(),
                k.resources.to_string(),
                clip(&opt(&k.last_error), 60),
            ]
        })
        .collect();
    let head = [
        "ID",
        "KEY",
        "STATE",
        "FAILURES",
        "COOLING UNTIL",
        "LAST USED",
        "REQ 24H",
        "ERR 24H",
        "RESOURCES",
        "LAST ERROR",
    ];
    table(&head, rows);
    Ok(0)
}

async fn add(ctx: &Ctx, args: Vec<String>, file: Option<std::path::PathBuf>) -> Outcome {
    let mut text = String::new();
    for a in &args {
        if a == "-" {
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|e| ClientError::Protocol(format!("reading stdin: {e}")))?;
            text.push('\n');
        } else {
            text.push_str(a);
            text.push('\n');
        }
    }
    if let Some(f) = &file {
        let content =
            std::fs::read_to_string(f).map_err(|e| ClientError::Protocol(format!("reading {}: {e}", f.display())))?;
        text.push_str(&content);
    }
    if args.is_empty() && file.is_none() {
        eprintln!("gbctl: give keys as arguments, --file F, or - for stdin");
        return Ok(2);
    }
    let (keys, malformed) = api::extract_keys(&text);
    let res: AddKeysResponse = ctx.client.post(api::KEYS_ADD, &AddKeysRequest { keys, malformed }).await?;
    if ctx.json() {
        json(&res);
    } else {
        emit(&format!("added {}, duplicates skipped {}, malformed {}\n", res.added, res.duplicates, res.malformed));
    }
    Ok(0)
}

async fn act(ctx: &Ctx, path: &str, verb: &str, sel: KeySelection) -> Outcome {
    let done: Vec<KeyRef> = ctx.client.post(path, &sel).await?;
    if ctx.json() {
        json(&done);
    } else {
        emit(&format!("{verb} {} key(s)\n", done.len()));
        if !done.is_empty() {
            table(&["ID", "KEY"], done.iter().map(|k| vec![k.id.to_string(), k.key.clone()]).collect());
        }
    }
    Ok(0)
}

async fn verify(ctx: &Ctx, sel: KeySelection) -> Outcome {
    let results: Vec<VerifyResult> = ctx.client.post(api::KEYS_VERIFY, &sel).await?;
    let failed = results.iter().filter(|r| !r.ok).count();
    if ctx.json() {
        json(&results);
    } else {
        let rows = results
            .iter()
            .map(|r| {
                vec![
                    r.id.to_string(),
                    r.key.clone(),
                    if r.ok { "ok".into() } else { "FAILED".into() },
                    opt(&r.status),
                    format!("{} ms", r.latency_ms),
                    clip(&opt(&r.error), 70),
                ]
            })
            .collect();
        table(&["ID", "KEY", "OK", "STATUS", "LATENCY", "ERROR"], rows);
        emit(&format!("{} verified, {} ok, {failed} failed\n", results.len(), results.len() - failed));
    }
    Ok(if failed > 0 { 1 } else { 0 })
}
