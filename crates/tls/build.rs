//! `cfg(ossl320)` when building against OpenSSL 3.2 or later (from openssl-sys's version
//! number, as rust-openssl does): `ASYNC_set_mem_functions` exists there.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(ossl320)");
    let version = std::env::var("DEP_OPENSSL_VERSION_NUMBER")
        .ok()
        .and_then(|v| u64::from_str_radix(&v, 16).ok())
        .unwrap_or(0);
    if version >= 0x3020_0000 {
        println!("cargo:rustc-cfg=ossl320");
    }
}
