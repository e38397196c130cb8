//! DataHub 3 connector: OAuth2, queue pollers, bundle split, outbound requests, spot prices.
