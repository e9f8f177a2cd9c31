//! `cfg(awslc)` when openssl-sys links AWS-LC: the tests of the OpenSSL provider are left out
//! there (AWS-LC has no providers; its remote keys sign through the private-key method).

fn main() {
    println!("cargo::rustc-check-cfg=cfg(awslc)");
    if std::env::var("DEP_OPENSSL_AWSLC").is_ok() {
        println!("cargo:rustc-cfg=awslc");
    }
}
