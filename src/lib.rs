//! Gatehouse: a self-hostable VPN gateway service whose HTTP API is wire-compatible with
//! Alibaba Cloud's VPN Gateway API. See ARCHITECTURE.md for the map.

pub mod accounts;
pub mod actions;
pub mod api;
pub mod app;
pub mod config;
pub mod control;
pub mod dataplane;
pub mod metrics;
pub mod peer_config;
pub mod reconciler;
pub mod secret;
pub mod store;
pub mod wire_enum;
