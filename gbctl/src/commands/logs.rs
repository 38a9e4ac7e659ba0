//! `gbctl logs`: recent records, or `-f` to follow the daemon's live stream (no polling).

use http_body_util::BodyExt;
use shared::admin::{ErrorLogView, LOGS, LOGS_FOLLOW, LogView};

use super::{Ctx, Outcome};
use crate::cli::LogsArgs;
use crate::client::{ClientError, encode};
use crate::output::{clip, emit, json, json_line, opt, table};

pub async fn run(ctx: &Ctx, args: LogsArgs) -> Outcome {
    let mut query = vec![format!("n={}", args.n)];
    if args.errors {
        query.push("errors=true".into());
    }
    for (name, value) in [("key", &args.key), ("model", &args.model), ("since", &args.since)] {
        if let Some(v) = value {
            query.push(format!("{name}={}", encode(v)));
        }
    }
    let query = query.join("&");
    if args.follow {
        return follow(ctx, &format!("{LOGS_FOLLOW}?{query}"), args.errors).await;
    }
    if args.errors {
        let rows: Vec<ErrorLogView> = ctx.client.get(&format!("{LOGS}?{query}")).await?;
        if ctx.json() {
            json(&rows);
        } else {
            table(&["TIME", "ROUTE", "MODEL", "KEY", "STATUS", "ERROR"], rows.iter().map(error_cells).collect());
        }
    } else {
        let rows: Vec<LogView> = ctx.client.get(&format!("{LOGS}?{query}")).await?;
        if ctx.json() {
            json(&rows);
        } else {
            table(
                &[
                    "TIME", "ROUTE", "MODEL", "KEY", "STATUS", "LATENCY", "TOKENS", "STREAM", "TRAIL", "ERROR",
                    "RESOURCE",
                ],
                rows.iter().map(request_cells).collect(),
            );
        }
    }
    Ok(0)
}

fn request_cells(r: &LogView) -> Vec<String> {
    vec![
        r.ts.clone(),
        r.route.clone(),
        opt(&r.model),
        opt(&r.key),
        r.status.to_string(),
        format!("{} ms", r.latency_ms),
        match (r.prompt_tokens, r.completion_tokens) {
            (None, None) => "-".into(),
            (p, c) => format!("{}/{}", p.unwrap_or(0), c.unwrap_or(0)),
        },
        if r.stream { "yes" } else { "no" }.into(),
        r.trail.clone(),
        clip(&opt(&r.error), 50),
        opt(&r.resource),
    ]
}

fn error_cells(e: &ErrorLogView) -> Vec<String> {
    vec![e.ts.clone(), e.route.clone(), opt(&e.model), opt(&e.key), opt(&e.status), clip(&e.error, 80)]
}

async fn follow(ctx: &Ctx, path: &str, errors: bool) -> Outcome {
    // Ctrl-C ends following cleanly: the handler is in place before the stream starts.
    let mut interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .map_err(|e| ClientError::Protocol(format!("installing a SIGINT handler: {e}")))?;
    let mut body = ctx.client.stream(path).await?;
    let mut pending: Vec<u8> = Vec::new();
    loop {
        let frame = tokio::select! {
            _ = interrupt.recv() => return Ok(0),
            f = body.frame() => f,
        };
        let Some(frame) = frame else { return Ok(0) }; // the daemon stopped
        let frame = frame.map_err(|e| ClientError::Protocol(e.to_string()))?;
        let Some(data) = frame.data_ref() else { continue };
        pending.extend_from_slice(data);
        while let Some(pos) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=pos).collect();
            print_line(ctx, &line, errors);
        }
    }
}

fn print_line(ctx: &Ctx, line: &[u8], errors: bool) {
    if errors {
        let Ok(e) = serde_json::from_slice::<ErrorLogView>(line) else { return };
        if ctx.json() { json_line(&e) } else { emit(&format!("{}\n", error_cells(&e).join("  "))) }
    } else {
        let Ok(r) = serde_json::from_slice::<LogView>(line) else { return };
        if ctx.json() { json_line(&r) } else { emit(&format!("{}\n", request_cells(&r).join("  "))) }
    }
}
