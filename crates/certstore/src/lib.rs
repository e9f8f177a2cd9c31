//! edgetls-certstore
pub mod sort;
mod name;
