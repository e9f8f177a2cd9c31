//! `cfg(awslc)` when openssl-sys links AWS-LC (xtask built with its `aws-lc` feature).

fn main() {
    println!("cargo::rustc-check-cfg=cfg(awslc)");
    if std::env::var("DEP_OPENSSL_AWSLC").is_ok() {
        println!("cargo:rustc-cfg=awslc");
    }
}
