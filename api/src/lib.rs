//! Operator HTTP API (axum).
