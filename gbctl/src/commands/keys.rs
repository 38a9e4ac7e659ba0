//! `gbctl keys ...`.

use std::io::Read;

use shared::admin::{
    self as api, AddKeysRequest, AddKeysResponse, KeyRef, KeySelection, KeyView, SetKeysRequest, VerifyResult,
};

use super::{Ctx, Outcome};
use crate::cli::{KeysCommand, LabelArgs};
use crate::client::{ClientError, encode};
use crate::output::{clip, emit, json, opt, table};

pub async fn run(ctx: &Ctx, cmd: KeysCommand) -> Outcome {
    match cmd {
        KeysCommand::List { state } => list(ctx, state).await,
        KeysCommand::Add { mut keys, file, mut labels, mut kind } => {
            match lift_labels(&mut keys, &mut labels, Some(&mut kind)) {
                Ok(()) => add(ctx, keys, file, labels, kind).await,
                Err(e) => usage(&e),
            }
        }
        KeysCommand::Set { mut keys, mut labels } => match lift_labels(&mut keys, &mut labels, None) {
            Ok(()) => set(ctx, keys, labels).await,
            Err(e) => usage(&e),
        },
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

fn usage(message: &str) -> Outcome {
    eprintln!("gbctl: {message}");
    Ok(2)
}

/// KEY arguments may begin with `-`, so options after them arrive among the "keys": lift each
/// label option (`--group G` or `--group=G`) out, with its value.
fn lift_labels(
    keys: &mut Vec<String>,
    labels: &mut LabelArgs,
    kind: Option<&mut Option<String>>,
) -> Result<(), String> {
    let mut lifted: Vec<(String, String)> = Vec::new();
    let mut rest = Vec::with_capacity(keys.len());
    let mut args = std::mem::take(keys).into_iter();
    let names = ["--group", "--project", "--note", "--kind"];
    while let Some(arg) = args.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) => (n.to_string(), Some(v.to_string())),
            None => (arg.clone(), None),
        };
        if !names.contains(&name.as_str()) || (name == "--kind" && kind.is_none()) {
            rest.push(arg);
            continue;
        }
        let value = match inline {
            Some(v) => v,
            None => args.next().ok_or_else(|| format!("{name} needs a value"))?,
        };
        lifted.push((name, value));
    }
    *keys = rest;
    let mut kind = kind;
    for (name, value) in lifted {
        match name.as_str() {
            "--group" => labels.group = Some(value),
            "--project" => labels.project = Some(value),
            "--note" => labels.note = Some(value),
            _ => {
                if !["gemini", "vertex"].contains(&value.as_str()) {
                    return Err(format!("--kind {value:?}: use gemini or vertex"));
                }
                if let Some(k) = kind.as_deref_mut() {
                    *k = Some(value);
                }
            }
        }
    }
    Ok(())
}

async fn set(ctx: &Ctx, keys: Vec<String>, labels: LabelArgs) -> Outcome {
    if labels.group.is_none() && labels.project.is_none() && labels.note.is_none() {
        return usage("keys set: give --group, --project or --note (\"\" clears one)");
    }
    let req = SetKeysRequest { keys, labels: labels.into() };
    let done: Vec<KeyRef> = ctx.client.post(api::KEYS_SET, &req).await?;
    if ctx.json() {
        json(&done);
    } else {
        emit(&format!("labelled {} key(s)\n", done.len()));
        table(&["ID", "KEY"], done.iter().map(|k| vec![k.id.to_string(), k.key.clone()]).collect());
    }
    Ok(0)
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
                k.kind.clone(),
                opt(&k.group),
                opt(&k.project),
                k.state.clone(),
                k.failures.to_string(),
                opt(&k.cooling_until),
                opt(&k.last_used),
                k.requests_24h.to_string(),
                k.errors_24h.to_string(),
                k.resources.to_string(),
                clip(&opt(&k.last_error), 60),
                clip(&opt(&k.note), 40),
            ]
        })
        .collect();
    let head = [
        "ID",
        "KEY",
        "KIND",
        "GROUP",
        "PROJECT",
        "STATE",
        "FAILURES",
        "COOLING UNTIL",
        "LAST USED",
        "REQ 24H",
        "ERR 24H",
        "RESOURCES",
        "LAST ERROR",
        "NOTE",
    ];
    table(&head, rows);
    Ok(0)
}

async fn add(
    ctx: &Ctx,
    args: Vec<String>,
    file: Option<std::path::PathBuf>,
    labels: LabelArgs,
    kind: Option<String>,
) -> Outcome {
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
    let req = AddKeysRequest { keys, malformed, kind, labels: labels.into() };
    let res: AddKeysResponse = ctx.client.post(api::KEYS_ADD, &req).await?;
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
