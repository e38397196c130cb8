//! DataHub 3 B2B API simulator and scenario generator.
