//! gatewayd: pools Gemini API keys behind one endpoint.
pub mod auth;
pub mod body;
pub mod config;
pub mod error;
pub mod keypool;
pub mod logbook;
pub mod outcome;
pub mod sse;
pub mod store;
pub mod upstream;
pub mod usage;
