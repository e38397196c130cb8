//! Sinks: TimescaleDB/PostgreSQL tables and ERP topics.
