//! Outgoing connections resume per origin.
