//! A certificate chain and its private key: loaded from PEM, or generated for development.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::Error;

/// A certificate chain (end entity first) and its private key: what a server presents, or
/// what a client presents for client-certificate authentication (facil.io's `cert_add`
/// arguments).
///
/// # Examples
/// ```
/// let identity = fio_tls::Identity::self_signed(&["localhost"])?;
/// assert_eq!(identity.chain().len(), 1);
/// assert_eq!(identity.fingerprint().len(), 32 * 3 - 1);
/// # Ok::<(), fio_tls::Error>(())
/// ```
pub struct Identity {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

impl Identity {
    /// An identity from DER: `chain` starts with the end-entity certificate.
    ///
    /// # Errors
    /// [`Error::NoCertificate`] when `chain` is empty.
    pub fn new(
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Result<Self, Error> {
        if chain.is_empty() {
            return Err(Error::NoCertificate(PathBuf::from("<chain>")));
        }
        Ok(Self { chain, key })
    }

    /// Loads the certificates of `cert` (a PEM file, end entity first) and the first private
    /// key of `key` (a PEM file: PKCS#8, PKCS#1 or SEC1).
    ///
    /// # Errors
    /// [`Error::Pem`] when a file can't be read or holds no valid PEM of the expected kind;
    /// [`Error::NoCertificate`] when `cert` holds no certificate.
    pub fn from_pem_files(cert: impl AsRef<Path>, key: impl AsRef<Path>) -> Result<Self, Error> {
        let (cert, key) = (cert.as_ref(), key.as_ref());
        fn pem(path: &Path) -> impl Fn(rustls_pki_types::pem::Error) -> Error + '_ {
            move |source| Error::Pem {
                path: path.to_owned(),
                source,
            }
        }
        let chain = CertificateDer::pem_file_iter(cert)
            .map_err(pem(cert))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(pem(cert))?;
        if chain.is_empty() {
            return Err(Error::NoCertificate(cert.to_owned()));
        }
        let key = PrivateKeyDer::from_pem_file(key).map_err(pem(key))?;
        Ok(Self { chain, key })
    }

    /// Like [`from_pem_files`](Self::from_pem_files), from PEM text in memory.
    ///
    /// # Errors
    /// As [`from_pem_files`](Self::from_pem_files).
    pub fn from_pem(cert: &[u8], key: &[u8]) -> Result<Self, Error> {
        let pem = |source| Error::Pem {
            path: PathBuf::from("<memory>"),
            source,
        };
        let chain = CertificateDer::pem_slice_iter(cert)
            .collect::<Result<Vec<_>, _>>()
            .map_err(pem)?;
        if chain.is_empty() {
            return Err(Error::NoCertificate(PathBuf::from("<memory>")));
        }
        let key = PrivateKeyDer::from_pem_slice(key).map_err(pem)?;
        Ok(Self { chain, key })
    }

    /// A fresh self-signed certificate (ECDSA P-256) for `names` (DNS names or IP
    /// addresses), for development: clients must trust this very certificate, or be told
    /// not to check (`curl --insecure`). [`fingerprint`](Self::fingerprint) identifies it.
    ///
    /// # Errors
    /// [`Error::Generate`] when a name is invalid or generation fails.
    pub fn self_signed(names: &[&str]) -> Result<Self, Error> {
        let names: Vec<String> = names.iter().map(|name| (*name).to_owned()).collect();
        let generated = rcgen::generate_simple_self_signed(names)?;
        let key = PrivateKeyDer::try_from(generated.signing_key.serialize_der())
            .map_err(|why| Error::Rustls(rustls::Error::General(why.to_owned())))?;
        Ok(Self {
            chain: vec![generated.cert.der().clone()],
            key,
        })
    }

    /// The certificate chain, end entity first.
    pub fn chain(&self) -> &[CertificateDer<'static>] {
        &self.chain
    }

    /// The end-entity certificate in PEM, to hand to a client that should trust it.
    pub fn cert_pem(&self) -> String {
        pem_encode("CERTIFICATE", &self.chain[0])
    }

    /// The private key in PEM.
    pub fn key_pem(&self) -> String {
        let label = match &self.key {
            PrivateKeyDer::Pkcs1(_) => "RSA PRIVATE KEY",
            PrivateKeyDer::Sec1(_) => "EC PRIVATE KEY",
            _ => "PRIVATE KEY",
        };
        pem_encode(label, self.key.secret_der())
    }

    /// The SHA-256 fingerprint of the end-entity certificate, as upper-case hex pairs
    /// separated by colons (the form `openssl x509 -fingerprint -sha256` prints).
    pub fn fingerprint(&self) -> String {
        let digest = ring::digest::digest(&ring::digest::SHA256, &self.chain[0]);
        let hex: Vec<String> = digest
            .as_ref()
            .iter()
            .map(|byte| format!("{byte:02X}"))
            .collect();
        hex.join(":")
    }

    /// The rustls form, its key loaded by `provider`.
    pub(crate) fn certified(&self, provider: &CryptoProvider) -> Result<Arc<CertifiedKey>, Error> {
        let key = provider
            .key_provider
            .load_private_key(self.key.clone_key())?;
        let certified = CertifiedKey::new(self.chain.clone(), key);
        certified.keys_match().or_else(|error| match error {
            // A key type rustls can't compare is still usable.
            rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown) => Ok(()),
            other => Err(other),
        })?;
        Ok(Arc::new(certified))
    }

    /// The private key, for building rustls configurations.
    pub fn into_key(self) -> PrivateKeyDer<'static> {
        self.key
    }

    /// A copy (keys are not `Clone` in rustls, on purpose).
    pub(crate) fn duplicate(&self) -> Self {
        Self {
            chain: self.chain.clone(),
            key: self.key.clone_key(),
        }
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("certificates", &self.chain.len())
            .field("fingerprint", &self.fingerprint())
            .finish_non_exhaustive()
    }
}

/// PEM armour around `der`, 64 base64 characters a line.
fn pem_encode(label: &str, der: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut encoded = String::with_capacity(der.len() * 4 / 3 + 4);
    for group in der.chunks(3) {
        let bytes = [
            group[0],
            *group.get(1).unwrap_or(&0),
            *group.get(2).unwrap_or(&0),
        ];
        let word = u32::from(bytes[0]) << 16 | u32::from(bytes[1]) << 8 | u32::from(bytes[2]);
        for index in 0..4 {
            if index <= group.len() {
                encoded.push(char::from(
                    ALPHABET[(word >> (18 - 6 * index)) as usize & 63],
                ));
            } else {
                encoded.push('=');
            }
        }
    }
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in encoded.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}
