//! gatewayd: pools Gemini API keys behind one endpoint.
pub mod config;
pub mod keypool;
pub mod outcome;
