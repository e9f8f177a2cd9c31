//! `cfg(ossl320)` when building against OpenSSL 3.2 or later (from openssl-sys's version
//! number, as rust-openssl does): `ASYNC_set_mem_functions` exists there. `cfg(awslc)` when
//! openssl-sys links AWS-LC (its `aws-lc` feature, set by this crate's or any other's).

fn main() {
    println!("cargo::rustc-check-cfg=cfg(ossl320)");
    println!("cargo::rustc-check-cfg=cfg(awslc)");
    if std::env::var("DEP_OPENSSL_AWSLC").is_ok() {
        println!("cargo:rustc-cfg=awslc");
        return;
    }
    let version = std::env::var("DEP_OPENSSL_VERSION_NUMBER")
        .ok()
        .and_then(|v| u64::from_str_radix(&v, 16).ok())
        .unwrap_or(0);
    if version >= 0x3020_0000 {
        println!("cargo:rustc-cfg=ossl320");
    }
}
