//! One module per command group. Each returns the exit status it settled on, or the client error
//! that stopped it.

pub mod keys;
pub mod logs;
pub mod settings;
pub mod stats;
pub mod status;

use crate::cli::Format;
use crate::client::{Client, ClientError};

pub struct Ctx {
    pub client: Client,
    pub format: Format,
}

impl Ctx {
    pub fn json(&self) -> bool {
        self.format == Format::Json
    }
}

pub type Outcome = Result<u8, ClientError>;
