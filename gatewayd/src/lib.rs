//! gatewayd: pools Gemini API keys behind one endpoint.
pub mod config;
pub mod keypool;
pub mod logbook;
pub mod outcome;
pub mod store;
