//! Client dialects: each turns a client request into an upstream call plus a `proxy::Render` for
//! the answer, and never talks to the key pool or the upstream itself.

pub mod anthropic;
pub mod caches;
pub mod files;
pub mod interactions;
pub mod operations;
mod owned;
pub mod vertex;

use bytes::Bytes;
use http::{HeaderMap, Method};

use crate::affinity::Owner;

/// What a native handler reads of the client's request.
pub struct Call<'a> {
    /// The API version the client called (`v1beta`, `v1`); the upstream path uses the same.
    pub version: &'static str,
    pub method: &'a Method,
    pub headers: &'a HeaderMap,
    pub query: Option<&'a str>,
    pub body: Bytes,
    /// The client token that asked, for key affinity (hashed only when a route needs it).
    pub token: &'a str,
    /// A body relayed as it arrives instead of read first (a resumable upload's chunks).
    pub stream: Option<crate::body::Body>,
}

impl Call<'_> {
    pub fn owner(&self) -> Owner {
        Owner::of_token(self.token)
    }
}

pub mod gemini;
pub mod openai;
pub mod passthrough;
pub mod responses;
pub mod schema;
pub mod signature;
pub mod wire;
