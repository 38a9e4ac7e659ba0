//! `gbctl stats`.

use shared::admin::{STATS, StatsRow};

use super::{Ctx, Outcome};
use crate::cli::StatsArgs;
use crate::client::encode;
use crate::output::{json, table};

pub async fn run(ctx: &Ctx, args: StatsArgs) -> Outcome {
    let mut path = format!("{STATS}?by={}", encode(&args.by));
    if let Some(s) = &args.since {
        path.push_str(&format!("&since={}", encode(s)));
    }
    let rows: Vec<StatsRow> = ctx.client.get(&path).await?;
    if ctx.json() {
        json(&rows);
        return Ok(0);
    }
    let header = [
        if args.by == "key" { "KEY" } else { "MODEL" },
        "REQUESTS",
        "ERRORS",
        "PROMPT TOK",
        "COMPL TOK",
        "P50 MS",
        "P95 MS",
    ];
    let cells = rows
        .iter()
        .map(|r| {
            vec![
                r.name.clone(),
                r.requests.to_string(),
                r.errors.to_string(),
                r.prompt_tokens.to_string(),
                r.completion_tokens.to_string(),
                r.p50_ms.to_string(),
                r.p95_ms.to_string(),
            ]
        })
        .collect();
    table(&header, cells);
    Ok(0)
}
