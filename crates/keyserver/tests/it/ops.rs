//! Every opcode, each result checked with the public key (the `openssl` crate's verify).

use crate::common::{connect, setup, ski, start};
use edgetls_keyless_proto::{Digest, Opcode, Operation};
use edgetls_keyserver::{Authz, ServerOptions};
use openssl::ecdsa::EcdsaSig;
use openssl::md::Md;
use openssl::pkey::{HasPublic, PKeyRef};
use openssl::pkey_ctx::PkeyCtx;
use openssl::rsa::Padding;
use openssl::sign::{RsaPssSaltlen, Verifier};

fn verify_rsa<T: HasPublic>(
    key: &PKeyRef<T>,
    pss: bool,
    md: Option<&openssl::md::MdRef>,
    digest: &[u8],
    sig: &[u8],
) -> bool {
    let mut ctx = PkeyCtx::new(key).unwrap();
    ctx.verify_init().unwrap();
    ctx.set_rsa_padding(if pss {
        Padding::PKCS1_PSS
    } else {
        Padding::PKCS1
    })
    .unwrap();
    if let Some(md) = md {
        ctx.set_signature_md(md).unwrap();
    }
    if pss {
        ctx.set_rsa_pss_saltlen(RsaPssSaltlen::DIGEST_LENGTH)
            .unwrap();
    }
    ctx.verify(digest, sig).unwrap_or(false)
}

/// Every RSA (PKCS#1 with each hash and MD5‖SHA-1, PSS) and ECDSA (P-256 and P-384, each
/// hash) sign opcode through `call`, each answer verified with the public key.
pub(crate) fn every_sign_opcode_verifies<T: HasPublic>(
    call: &mut dyn FnMut(Operation) -> Operation,
    rsa: &PKeyRef<T>,
    p256: &PKeyRef<T>,
    p384: &PKeyRef<T>,
) {
    let msg = b"the handshake transcript";
    let mds = [
        (
            Opcode::RSA_SIGN_SHA1,
            Opcode::ECDSA_SIGN_SHA1,
            None,
            Md::sha1(),
        ),
        (
            Opcode::RSA_SIGN_SHA224,
            Opcode::ECDSA_SIGN_SHA224,
            None,
            Md::sha224(),
        ),
        (
            Opcode::RSA_SIGN_SHA256,
            Opcode::ECDSA_SIGN_SHA256,
            Some(Opcode::RSA_PSS_SIGN_SHA256),
            Md::sha256(),
        ),
        (
            Opcode::RSA_SIGN_SHA384,
            Opcode::ECDSA_SIGN_SHA384,
            Some(Opcode::RSA_PSS_SIGN_SHA384),
            Md::sha384(),
        ),
        (
            Opcode::RSA_SIGN_SHA512,
            Opcode::ECDSA_SIGN_SHA512,
            Some(Opcode::RSA_PSS_SIGN_SHA512),
            Md::sha512(),
        ),
    ];
    for (rsa_op, ec_op, pss_op, md) in mds {
        let digest = openssl::hash::hash(
            openssl::hash::MessageDigest::from_nid(md.type_()).unwrap(),
            msg,
        )
        .unwrap()
        .to_vec();
        let r = call(Operation::request(rsa_op, ski(rsa), digest.clone()));
        assert_eq!(
            r.opcode,
            Opcode::RESPONSE,
            "{rsa_op:?}: {:?}",
            r.error_code()
        );
        assert!(
            verify_rsa(rsa, false, Some(md), &digest, &r.payload),
            "{rsa_op:?}"
        );
        if let Some(pss_op) = pss_op {
            let r = call(Operation::request(pss_op, ski(rsa), digest.clone()));
            assert!(
                verify_rsa(rsa, true, Some(md), &digest, &r.payload),
                "{pss_op:?}"
            );
            // PSS is randomized: two signatures differ, both verify.
            let again = call(Operation::request(pss_op, ski(rsa), digest.clone()));
            assert_ne!(again.payload, r.payload);
        }
        for ec in [p256, p384] {
            let r = call(Operation::request(ec_op, ski(ec), digest.clone()));
            let sig = EcdsaSig::from_der(&r.payload).expect("a DER ECDSA signature");
            assert!(
                sig.verify(&digest, &ec.ec_key().unwrap()).unwrap(),
                "{ec_op:?} {}",
                ec.bits()
            );
        }
    }
    // MD5SHA1 (TLS 1.0/1.1): PKCS#1 type 1 padding around the bare 36 bytes, no DigestInfo.
    let md5sha1 = [
        openssl::hash::hash(openssl::hash::MessageDigest::md5(), msg)
            .unwrap()
            .to_vec(),
        openssl::sha::sha1(msg).to_vec(),
    ]
    .concat();
    let r = call(Operation::request(
        Opcode::RSA_SIGN_MD5SHA1,
        ski(rsa),
        md5sha1.clone(),
    ));
    let mut out = vec![0; 256];
    let n = rsa
        .rsa()
        .unwrap()
        .public_decrypt(&r.payload, &mut out, Padding::PKCS1)
        .unwrap();
    assert_eq!(&out[..n], &md5sha1[..]);
    let r = call(Operation::request(
        Opcode::ECDSA_SIGN_MD5SHA1,
        ski(p256),
        md5sha1.clone(),
    ));
    assert!(
        EcdsaSig::from_der(&r.payload)
            .unwrap()
            .verify(&md5sha1, &p256.ec_key().unwrap())
            .unwrap()
    );
}

#[test]
fn every_sign_and_decrypt_opcode_verifies_with_the_public_key() {
    let (pki, keys) = setup();
    let server = start(&pki, Authz::open(), ServerOptions::default());
    let mut c = connect(&pki, server.addr, Some("edge-1")).unwrap();
    let mut id = 1;
    let mut call = |op: Operation| {
        id += 1;
        c.call(id, op)
    };
    every_sign_opcode_verifies(&mut call, &keys.rsa, &keys.p256, &keys.p384);
    let msg = b"the handshake transcript";
    // Ed25519 signs the message itself.
    let r = call(Operation::request(
        Opcode::ED25519_SIGN,
        ski(&keys.ed25519),
        msg.to_vec(),
    ));
    assert!(
        Verifier::new_without_digest(&keys.ed25519)
            .unwrap()
            .verify_oneshot(&r.payload, msg)
            .unwrap()
    );
}

#[test]
fn rsa_decrypt_returns_the_padded_block_raw_decrypt_the_number_and_strip_the_message() {
    let (pki, keys) = setup();
    let rsa = keys.rsa.rsa().unwrap();
    let premaster = [3u8; 48];
    let mut ct = vec![0; 256];
    rsa.public_encrypt(&premaster, &mut ct, Padding::PKCS1)
        .unwrap();
    let mut block = vec![0u8; 256];
    block[1..]
        .iter_mut()
        .enumerate()
        .for_each(|(i, b)| *b = i as u8);
    let mut raw_ct = vec![0; 256];
    rsa.public_encrypt(&block, &mut raw_ct, Padding::NONE)
        .unwrap();

    let server = start(&pki, Authz::open(), ServerOptions::default());
    let mut c = connect(&pki, server.addr, Some("edge-1")).unwrap();
    // 0x01 as gokeyless does it: c^d mod n, i.e. 00 02 <random non-zero> 00 <premaster>.
    let r = c.call(
        1,
        Operation::request(Opcode::RSA_DECRYPT, ski(&keys.rsa), ct.clone()),
    );
    assert_eq!(r.payload.len(), 256);
    assert_eq!(&r.payload[..2], &[0, 2]);
    assert!(r.payload.ends_with(&premaster) && r.payload[256 - 49] == 0);
    let r = c.call(
        2,
        Operation::request(Opcode::RSA_DECRYPT_RAW, ski(&keys.rsa), raw_ct.clone()),
    );
    assert_eq!(r.payload, block);
    // Found by the legacy digest instead of the SKI.
    let by_digest = Operation {
        opcode: Opcode::RSA_DECRYPT_RAW,
        payload: raw_ct,
        digest: Some(Digest::of_rsa_modulus(&rsa.n().to_vec())),
        ..Operation::default()
    };
    assert_eq!(c.call(3, by_digest).payload, block);
    drop(c);
    server.shutdown();

    // The older C key server's behaviour: padding removed.
    let mut opts = ServerOptions::default();
    opts.strip_rsa_padding = true;
    let server = start(&pki, Authz::open(), opts);
    let mut c = connect(&pki, server.addr, Some("edge-1")).unwrap();
    assert_eq!(
        c.call(
            1,
            Operation::request(Opcode::RSA_DECRYPT, ski(&keys.rsa), ct)
        )
        .payload,
        premaster
    );
}
