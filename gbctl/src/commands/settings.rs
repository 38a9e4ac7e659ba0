//! `gbctl settings ...`.

use shared::admin::{SETTINGS, SetSettingRequest, SettingView};

use super::{Ctx, Outcome};
use crate::cli::SettingsCommand;
use crate::client::encode;
use crate::output::{json, table};

pub async fn run(ctx: &Ctx, cmd: SettingsCommand) -> Outcome {
    match cmd {
        SettingsCommand::List => {
            let all: Vec<SettingView> = ctx.client.get(SETTINGS).await?;
            show(ctx, &all);
        }
        SettingsCommand::Get { name } => {
            let one: SettingView = ctx.client.get(&path(&name)).await?;
            show_one(ctx, one);
        }
        SettingsCommand::Set { name, value } => {
            let one: SettingView = ctx.client.put(&path(&name), &SetSettingRequest { value }).await?;
            show_one(ctx, one);
        }
        SettingsCommand::Unset { name } => {
            let one: SettingView = ctx.client.delete(&path(&name)).await?;
            show_one(ctx, one);
        }
    }
    Ok(0)
}

fn path(name: &str) -> String {
    format!("{SETTINGS}/{}", encode(name))
}

fn show_one(ctx: &Ctx, one: SettingView) {
    if ctx.json() { json(&one) } else { show(ctx, &[one]) }
}

fn show(ctx: &Ctx, all: &[SettingView]) {
    if ctx.json() {
        json(all);
        return;
    }
    let rows = all
        .iter()
        .map(|s| vec![s.name.clone(), s.value.to_string(), s.source.clone(), if s.hot { "yes" } else { "no" }.into()])
        .collect();
    table(&["NAME", "VALUE", "SOURCE", "HOT"], rows);
}
