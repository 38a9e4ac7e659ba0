//! `gbctl status`.

use shared::admin::{STATUS, StatusView};

use super::{Ctx, Outcome};
use crate::output::{emit, human_secs, json};

pub async fn run(ctx: &Ctx) -> Outcome {
    let s: StatusView = ctx.client.get(STATUS).await?;
    if ctx.json() {
        json(&s);
        return Ok(0);
    }
    let k = &s.keys;
    emit(&format!(
        "version     {}\nuptime      {} (since {})\nlisten      {}\nsocket      {}\nkeys        {} total: {} active, {} cooling, {} invalid, {} disabled\nrequests    1m: {}   1h: {}   24h: {}\n",
        s.version,
        human_secs(s.uptime_secs),
        s.started_at,
        s.listen,
        s.admin_socket,
        k.total,
        k.active,
        k.cooling,
        k.invalid,
        k.disabled,
        s.requests_1m,
        s.requests_1h,
        s.requests_24h
    ));
    if s.draining {
        emit(&format!("DRAINING    shutting down; {} request(s) still in flight\n", s.in_flight));
    } else {
        emit(&format!("in flight   {}\n", s.in_flight));
    }
    if !s.database.is_empty() && s.database != "ok" {
        emit(&format!("DATABASE    damaged: {} (back it up and check it)\n", crate::output::cell(&s.database)));
    }
    if s.logs_dropped > 0 {
        emit(&format!("log records dropped (writer fell behind): {}\n", s.logs_dropped));
    }
    Ok(0)
}
