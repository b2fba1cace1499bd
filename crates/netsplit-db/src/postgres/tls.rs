//! TLS for the PostgreSQL client: libpq's `sslmode` (and `sslrootcert`) on tokio-postgres, with
//! OpenSSL (`postgres-openssl`). The options' check builds it once (a bad `sslrootcert` stops
//! the run there, exit 254); each client's settings build their own ([`Tls::of`]).
//!
//! The modes do what libpq's do (docs/targets/postgres.md):
//! - `disable`: never TLS;
//! - `prefer`: TLS when the server offers it, else without; the server's certificate is not
//!   checked (as libpq without a root certificate);
//! - `require`: TLS or no connection; the certificate is not checked — unless `sslrootcert` is
//!   given, when it is checked against that CA as `verify-ca` (libpq does the same when a root
//!   certificate file exists);
//! - `verify-ca`: TLS, and the server's certificate chain must lead to `sslrootcert` (or, without
//!   it, to the control node's system CAs);
//! - `verify-full`: as `verify-ca`, and the certificate must name the host netsplit connected to
//!   (its address on local clusters and in nodes files given as addresses).

use super::config::SslMode;
use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode};
use postgres_openssl::MakeTlsConnector;

/// The TLS side of a connection: the mode, the root certificate file, and the connector built
/// from them (none for `disable`).
#[derive(Clone)]
pub struct Tls {
    mode: SslMode,
    rootcert: Option<String>,
    connector: Option<MakeTlsConnector>,
    /// Why the connector could not be built ([`Tls::of`]): every connection fails with it.
    error: Option<String>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("mode", &self.mode)
            .field("rootcert", &self.rootcert)
            .finish()
    }
}

/// Two settings are the same when their mode and root certificate file are.
impl PartialEq for Tls {
    fn eq(&self, other: &Tls) -> bool {
        self.mode == other.mode && self.rootcert == other.rootcert
    }
}
impl Eq for Tls {}

impl Default for Tls {
    fn default() -> Tls {
        Tls {
            mode: SslMode::Disable,
            rootcert: None,
            connector: None,
            error: None,
        }
    }
}

impl Tls {
    /// The connector for `mode`, checking certificates against `rootcert` (a PEM file on the
    /// control node) where the mode checks them. The error names the file.
    pub fn new(mode: SslMode, rootcert: Option<&str>) -> Result<Tls, String> {
        let rootcert = rootcert.map(str::to_string);
        if mode == SslMode::Disable {
            return Ok(Tls {
                mode,
                rootcert,
                connector: None,
                error: None,
            });
        }
        let ssl = |e: openssl::error::ErrorStack| format!("TLS setup: {e}");
        let mut b = SslConnector::builder(SslMethod::tls_client()).map_err(ssl)?;
        let verify = match mode {
            SslMode::VerifyCa | SslMode::VerifyFull => true,
            SslMode::Require => rootcert.is_some(),
            SslMode::Prefer | SslMode::Disable => false,
        };
        if verify {
            match &rootcert {
                Some(f) => {
                    let pem = std::fs::read(f)
                        .map_err(|e| format!("sslrootcert {f}: cannot read it: {e}"))?;
                    let certs = openssl::x509::X509::stack_from_pem(&pem)
                        .ok()
                        .filter(|c| !c.is_empty())
                        .ok_or_else(|| format!("sslrootcert {f}: no PEM certificate in it"))?;
                    for c in certs {
                        b.cert_store_mut().add_cert(c).map_err(ssl)?;
                    }
                }
                None => b.set_default_verify_paths().map_err(ssl)?,
            }
            b.set_verify(SslVerifyMode::PEER);
        } else {
            b.set_verify(SslVerifyMode::NONE);
        }
        let mut connector = MakeTlsConnector::new(b.build());
        let check_host = mode == SslMode::VerifyFull;
        connector.set_callback(move |cfg, _host| {
            cfg.set_verify_hostname(check_host);
            Ok(())
        });
        Ok(Tls {
            mode,
            rootcert,
            connector: Some(connector),
            error: None,
        })
    }

    /// As [`Tls::new`], keeping an error for the connections to report (the options' check
    /// has already refused a bad file; this is for one that changed since).
    pub fn of(mode: SslMode, rootcert: Option<&str>) -> Tls {
        Tls::new(mode, rootcert).unwrap_or_else(|e| Tls {
            mode,
            rootcert: rootcert.map(str::to_string),
            connector: None,
            error: Some(e),
        })
    }

    /// Why no connection can be made with these settings, if so.
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    /// The mode.
    pub fn mode(&self) -> SslMode {
        self.mode
    }

    /// The connector, none for `disable`.
    pub fn connector(&self) -> Option<&MakeTlsConnector> {
        self.connector.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_build_and_a_bad_root_certificate_is_named() {
        assert!(Tls::new(SslMode::Disable, None)
            .unwrap()
            .connector()
            .is_none());
        for m in [
            SslMode::Prefer,
            SslMode::Require,
            SslMode::VerifyCa,
            SslMode::VerifyFull,
        ] {
            let t = Tls::new(m, None).unwrap();
            assert!(t.connector().is_some(), "{m:?}");
            assert_eq!(t.mode(), m);
        }
        let e = Tls::new(SslMode::VerifyCa, Some("/nonexistent/root.crt")).unwrap_err();
        assert!(
            e.contains("sslrootcert /nonexistent/root.crt: cannot read"),
            "{e}"
        );
        let dir = tempfile::tempdir().unwrap();
        let junk = dir.path().join("junk.crt");
        std::fs::write(&junk, "not a certificate\n").unwrap();
        let e = Tls::new(SslMode::VerifyFull, junk.to_str()).unwrap_err();
        assert!(e.contains("no PEM certificate"), "{e}");
        // `require` with a root certificate checks it (as libpq): a bad file is refused too.
        assert!(Tls::new(SslMode::Require, junk.to_str()).is_err());
        // `prefer` never checks, so its file is not read.
        assert!(Tls::new(SslMode::Prefer, junk.to_str()).is_ok());
        let t = Tls::of(SslMode::VerifyCa, junk.to_str());
        assert!(t.error().is_some_and(|e| e.contains("no PEM")));
        assert!(Tls::of(SslMode::Require, None).error().is_none());
    }
}
