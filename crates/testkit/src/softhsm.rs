//! A SoftHSM2 token of the test's own, in a temporary directory: keys generated in it
//! (`pkcs11-tool --keypairgen`, from Debian's `opensc`) or imported (`softhsm2-util --import`),
//! certificate objects written to it. Programs that use the token are started with
//! [`SoftHsm::command`], which points them at this token's configuration; nothing here sets
//! the environment of the test process itself.

use openssl::pkey::{PKey, Private, Public};
use openssl::x509::X509;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Debian's SoftHSM2 module (package `softhsm2`).
pub const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
/// The user PIN of every test token.
pub const PIN: &str = "1234";

pub struct SoftHsm {
    pub dir: tempfile::TempDir,
    pub label: String,
}

fn run(cmd: &mut Command) -> Vec<u8> {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e} (is Debian's softhsm2 and opensc installed?)"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

impl SoftHsm {
    /// A new token labelled `label`, user PIN [`PIN`].
    pub fn new(label: &str) -> SoftHsm {
        assert!(
            Path::new(MODULE).exists(),
            "{MODULE} is missing: install Debian's softhsm2 (.ci/run does)"
        );
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("tokens")).unwrap();
        std::fs::write(
            dir.path().join("softhsm2.conf"),
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                dir.path().join("tokens").display()
            ),
        )
        .unwrap();
        let hsm = SoftHsm {
            dir,
            label: label.to_string(),
        };
        run(hsm.command("softhsm2-util").args([
            "--init-token",
            "--free",
            "--label",
            label,
            "--pin",
            PIN,
            "--so-pin",
            "56785678",
        ]));
        hsm
    }

    /// The SoftHSM configuration file programs must be given (`SOFTHSM2_CONF`).
    pub fn conf(&self) -> PathBuf {
        self.dir.path().join("softhsm2.conf")
    }

    /// `program`, with this token's configuration in its environment.
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env("SOFTHSM2_CONF", self.conf());
        c
    }

    /// The RFC 7512 URI of the token, with the module and the PIN.
    pub fn uri(&self) -> String {
        format!(
            "pkcs11:token={}?module-path={MODULE}&pin-value={PIN}",
            self.label
        )
    }

    /// The directory SoftHSM keeps the token in (moving it away pulls the token out).
    pub fn token_dir(&self) -> PathBuf {
        let tokens = self.dir.path().join("tokens");
        let mut found = std::fs::read_dir(&tokens)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_dir());
        let dir = found.next().expect("the token's directory");
        assert!(found.next().is_none(), "one token per SoftHsm");
        dir
    }

    fn tool(&self) -> Command {
        let mut c = self.command("pkcs11-tool");
        c.args(["--module", MODULE, "--token-label", &self.label])
            .args(["--login", "--pin", PIN]);
        c
    }

    /// Generates a key pair in the token (`kind` as pkcs11-tool says it: `EC:prime256v1`,
    /// `EC:secp384r1`, `rsa:2048`); returns its public key.
    pub fn generate(&self, kind: &str, label: &str, id: u8) -> PKey<Public> {
        let id = format!("{id:02x}");
        run(self.tool().args([
            "--keypairgen",
            "--key-type",
            kind,
            "--label",
            label,
            "--id",
            &id,
        ]));
        let der = self.dir.path().join(format!("pub-{id}.der"));
        run(self
            .tool()
            .args(["--read-object", "--type", "pubkey", "--id", &id, "-o"])
            .arg(&der));
        PKey::public_key_from_der(&std::fs::read(der).unwrap()).unwrap()
    }

    /// Imports a private key (its public key object is made too).
    pub fn import(&self, key: &PKey<Private>, label: &str, id: u8) {
        let pem = self.dir.path().join(format!("import-{id:02x}.pem"));
        std::fs::write(&pem, key.private_key_to_pem_pkcs8().unwrap()).unwrap();
        run(self
            .command("softhsm2-util")
            .arg("--import")
            .arg(&pem)
            .args(["--token", &self.label, "--label", label])
            .args(["--id", &format!("{id:02x}"), "--pin", PIN]));
        std::fs::remove_file(pem).unwrap();
    }

    /// Writes a certificate object with `id`.
    pub fn write_cert(&self, cert: &X509, label: &str, id: u8) {
        let der = self.dir.path().join(format!("cert-{id:02x}.der"));
        std::fs::write(&der, cert.to_der().unwrap()).unwrap();
        run(self.tool().arg("--write-object").arg(&der).args([
            "--type",
            "cert",
            "--label",
            label,
            "--id",
            &format!("{id:02x}"),
        ]));
    }

    /// Deletes the object of `kind` (`pubkey`, `privkey`, `cert`) with `id`.
    pub fn delete(&self, kind: &str, id: u8) {
        run(self.tool().args([
            "--delete-object",
            "--type",
            kind,
            "--id",
            &format!("{id:02x}"),
        ]));
    }
}
