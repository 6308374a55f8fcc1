//! The hybrid post-quantum recipient type of the age spec: ML-KEM-768 + X25519 (X-Wing),
//! recipients `age1pq1…`, identities `AGE-SECRET-KEY-PQ-1…`, stanza `mlkem768x25519`
//! (<https://c2sp.org/age>, "The MLKEM768-X25519 (i.e. X-Wing) hybrid post-quantum
//! recipient type"), as Go age ≥ 1.3 and the TypeScript `age-encryption` package write it.
//!
//! - Identity: 32 bytes from the CSPRNG, the X-Wing seed itself, Bech32 with HRP
//!   `AGE-SECRET-KEY-PQ-` (upper case).
//! - Recipient: the 1216-byte X-Wing public key (ML-KEM-768 key, then X25519 key),
//!   Bech32 with HRP `age1pq` (lower case). Bech32 as in BIP 173 but without its
//!   90-character limit: a recipient is 1959 characters.
//! - Stanza: `-> mlkem768x25519 <base64 enc>`, body the HPKE ciphertext of the file key.
//!   HPKE base mode, KEM X-Wing (0x647a), KDF HKDF-SHA256, AEAD ChaCha20-Poly1305,
//!   info `age-encryption.org/mlkem768x25519`, empty aad; enc is 1120 bytes, the body 32.
//!
//! The types mirror the age crate's `x25519` module (`FromStr`, `to_string`,
//! `generate`, `to_public`, and its `Recipient`/`Identity` traits), so that age's own type
//! can replace this module once the age crate ships one. HPKE and X-Wing come from
//! RustCrypto's `hpke` and `x-wing` crates; nothing here is a primitive of our own.
//!
//! Both sides refuse an X25519 share of low order (an all-zero X25519 shared secret), as
//! the reference implementations do: a recipient whose X25519 half is such a point does
//! not parse, and a stanza whose X25519 share is one is rejected as invalid
//! (`x-wing`'s non-contributory-rejecting decapsulation key tells).

use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;

use age::secrecy::SecretString;
use age::{DecryptError, EncryptError};
use age_core::format::{FileKey, Stanza, FILE_KEY_BYTES};
use age_core::secrecy::ExposeSecret;
use base64::{prelude::BASE64_STANDARD_NO_PAD, Engine};
use bech32::{FromBase32, ToBase32, Variant};
use hpke::aead::{AeadTag, ChaCha20Poly1305};
use hpke::kdf::HkdfSha256;
use hpke::kem::XWing;
use hpke::{Deserializable, Kem, OpModeR, OpModeS, Serializable};
use rand::RngCore;
use x_wing::TryDecapsulate;
use zeroize::{Zeroize, Zeroizing};

/// The stanza's first argument (its tag).
pub const STANZA_TAG: &str = "mlkem768x25519";
/// Every recipient starts with this.
pub const RECIPIENT_PREFIX: &str = "age1pq1";
/// Every identity starts with this.
pub const IDENTITY_PREFIX: &str = "AGE-SECRET-KEY-PQ-1";
/// The label the recipient hands the encryptor (see the header writer's rule).
pub use crate::age_file::header::POSTQUANTUM_LABEL;

const RECIPIENT_HRP: &str = "age1pq";
const IDENTITY_HRP: &str = "age-secret-key-pq-";
const HPKE_INFO: &[u8] = b"age-encryption.org/mlkem768x25519";
/// Length of the encapsulated key (ML-KEM-768 ciphertext, then the X25519 share).
pub const ENC_LEN: usize = 1120;
/// Length of the public key (ML-KEM-768 encapsulation key, then the X25519 key).
pub const PUBLIC_KEY_LEN: usize = 1216;
const SEED_LEN: usize = 32;
const TAG_LEN: usize = 16;
const BODY_LEN: usize = FILE_KEY_BYTES + TAG_LEN;

type PublicKey = <XWing as Kem>::PublicKey;
type PrivateKey = <XWing as Kem>::PrivateKey;
type EncappedKey = <XWing as Kem>::EncappedKey;

/// Decodes strict Bech32 (BIP 173 checksum, not Bech32m; one case; zero padding) of any
/// length; returns the lower-case HRP and the bytes.
fn bech32_decode(s: &str) -> Result<(String, Zeroizing<Vec<u8>>), &'static str> {
    let (hrp, mut data, variant) = bech32::decode(s).map_err(|e| match e {
        bech32::Error::InvalidChecksum => "bad Bech32 checksum (mistyped or cut short?)",
        bech32::Error::MixedCase => "mixes upper and lower case",
        _ => "not valid Bech32",
    })?;
    let bytes = Vec::<u8>::from_base32(&data).map(Zeroizing::new);
    // The 5-bit groups hold the key too; bech32's u5 has no Zeroize, so overwrite them.
    let zero = bech32::u5::try_from_u8(0).expect("0 is a 5-bit value");
    data.iter_mut().for_each(|g| *g = zero);
    std::hint::black_box(&data);
    if variant != Variant::Bech32 {
        return Err("Bech32m, not Bech32");
    }
    Ok((hrp, bytes.map_err(|_| "not valid Bech32 (bad padding)")?))
}

fn bech32_encode(hrp: &str, bytes: &[u8]) -> String {
    bech32::encode(hrp, bytes.to_base32(), Variant::Bech32).expect("the HRP is valid")
}

/// A post-quantum recipient (public key), `age1pq1…`.
#[derive(Clone)]
pub struct Recipient(PublicKey);

impl FromStr for Recipient {
    type Err = &'static str;

    /// Parses `age1pq1…`: lower case, Bech32 with HRP `age1pq`, a valid 1216-byte
    /// X-Wing public key whose X25519 half is not a point of low order.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if !s.starts_with(RECIPIENT_PREFIX) {
            return Err("does not start with age1pq1");
        }
        let (hrp, bytes) = bech32_decode(s)?;
        if hrp != RECIPIENT_HRP {
            return Err("not an age1pq1 key");
        }
        if bytes.len() != PUBLIC_KEY_LEN {
            return Err("wrong length for an ML-KEM-768 + X25519 public key");
        }
        let pk = PublicKey::from_bytes(&bytes)
            .map_err(|_| "not a valid ML-KEM-768 + X25519 public key")?;
        let x25519: [u8; 32] = bytes[PUBLIC_KEY_LEN - 32..].try_into().expect("32 bytes");
        if !x25519_is_contributory(x25519) {
            return Err("its X25519 key is a point of low order (no shared secret can come of it)");
        }
        Ok(Recipient(pk))
    }
}

/// True when X25519 with `point` yields a non-zero shared secret. For every clamped
/// scalar the result is zero exactly when the point has low order, so one random scalar
/// answers for all.
fn x25519_is_contributory(point: [u8; 32]) -> bool {
    let mut scalar = Zeroizing::new([0u8; 32]);
    rand::rngs::OsRng.fill_bytes(scalar.as_mut());
    let secret = x25519_dalek::StaticSecret::from(*scalar);
    secret
        .diffie_hellman(&x25519_dalek::PublicKey::from(point))
        .was_contributory()
}

impl fmt::Display for Recipient {
    /// The `age1pq1…` encoding.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&bech32_encode(RECIPIENT_HRP, &self.0.to_bytes()))
    }
}

impl fmt::Debug for Recipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "mlkem768x25519::Recipient({self})")
    }
}

impl age::Recipient for Recipient {
    /// One `mlkem768x25519` stanza (HPKE SealBase of the file key), labelled
    /// [`POSTQUANTUM_LABEL`].
    fn wrap_file_key(
        &self,
        file_key: &FileKey,
    ) -> Result<(Vec<Stanza>, HashSet<String>), EncryptError> {
        let (enc, body) = hpke::single_shot_seal::<ChaCha20Poly1305, HkdfSha256, XWing>(
            &OpModeS::Base,
            &self.0,
            HPKE_INFO,
            file_key.expose_secret(),
            b"",
        )
        .map_err(|e| EncryptError::Io(std::io::Error::other(format!("HPKE seal: {e}"))))?;
        Ok((
            vec![Stanza {
                tag: STANZA_TAG.to_owned(),
                args: vec![BASE64_STANDARD_NO_PAD.encode(enc.to_bytes())],
                body,
            }],
            HashSet::from([POSTQUANTUM_LABEL.to_owned()]),
        ))
    }
}

/// A post-quantum identity (private key), `AGE-SECRET-KEY-PQ-1…`. Its seed and the keys
/// expanded from it are zeroized when it is dropped.
#[derive(Clone)]
pub struct Identity {
    /// For HPKE's key schedule.
    sk: PrivateKey,
    /// The same seed, to reject non-contributory X25519 shares before HPKE runs.
    check: x_wing::DecapsulationKeyRejectNonContrib,
}

impl Identity {
    fn from_seed(seed: &[u8; SEED_LEN]) -> Identity {
        Identity {
            sk: PrivateKey::from_bytes(seed).expect("a seed of the right length"),
            check: x_wing::DecapsulationKeyRejectNonContrib::from(*seed),
        }
    }

    /// A new identity: 32 bytes from the operating system's CSPRNG, as the spec says.
    pub fn generate() -> Identity {
        let mut seed = Zeroizing::new([0u8; SEED_LEN]);
        rand::rngs::OsRng.fill_bytes(seed.as_mut());
        Identity::from_seed(&seed)
    }

    /// The `AGE-SECRET-KEY-PQ-1…` encoding.
    pub fn to_string(&self) -> SecretString {
        let seed = Zeroizing::new(self.sk.to_bytes());
        let mut lower = bech32_encode(IDENTITY_HRP, &seed);
        let upper = SecretString::from(lower.to_uppercase());
        lower.zeroize();
        upper
    }

    /// The matching recipient.
    pub fn to_public(&self) -> Recipient {
        Recipient(XWing::sk_to_pk(&self.sk))
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("mlkem768x25519::Identity(…)")
    }
}

impl FromStr for Identity {
    type Err = &'static str;

    /// Parses `AGE-SECRET-KEY-PQ-1…`: upper case, Bech32 with HRP `AGE-SECRET-KEY-PQ-`,
    /// a 32-byte seed. The error never quotes the key.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if !s.starts_with(IDENTITY_PREFIX) {
            return Err("does not start with AGE-SECRET-KEY-PQ-1");
        }
        let (hrp, bytes) = bech32_decode(s)?;
        if hrp != IDENTITY_HRP {
            return Err("not an AGE-SECRET-KEY-PQ-1 key");
        }
        let seed: Zeroizing<[u8; SEED_LEN]> = Zeroizing::new(
            bytes[..]
                .try_into()
                .map_err(|_| "wrong length for a post-quantum identity (32 bytes)")?,
        );
        Ok(Identity::from_seed(&seed))
    }
}

impl age::Identity for Identity {
    /// Ignores stanzas of other types; rejects a `mlkem768x25519` stanza that is not
    /// exactly two arguments with a canonical 1120-byte enc and a 32-byte body, or whose
    /// X25519 share has low order; `None` when the stanza is for another key.
    fn unwrap_stanza(&self, stanza: &Stanza) -> Option<Result<FileKey, DecryptError>> {
        if stanza.tag != STANZA_TAG {
            return None;
        }
        let invalid = Some(Err(DecryptError::InvalidHeader));
        let [arg] = &stanza.args[..] else {
            return invalid;
        };
        // The base64 engine refuses non-canonical encodings (stray trailing bits).
        let Some(enc) = BASE64_STANDARD_NO_PAD
            .decode(arg)
            .ok()
            .filter(|enc| enc.len() == ENC_LEN)
        else {
            return invalid;
        };
        // Length first, before any decryption: the spec's defence against partitioning
        // oracles.
        if stanza.body.len() != BODY_LEN {
            return invalid;
        }
        let Ok(ciphertext) = x_wing::Ciphertext::try_from(&enc[..]) else {
            return invalid;
        };
        if self.check.try_decapsulate(&ciphertext).is_err() {
            return invalid;
        }
        let Ok(encapped) = EncappedKey::from_bytes(&enc) else {
            return invalid;
        };
        let Ok(tag) = AeadTag::<ChaCha20Poly1305>::from_bytes(&stanza.body[FILE_KEY_BYTES..])
        else {
            return invalid;
        };
        let mut file_key = Zeroizing::new([0u8; FILE_KEY_BYTES]);
        file_key.copy_from_slice(&stanza.body[..FILE_KEY_BYTES]);
        // X-Wing decapsulation never fails (implicit rejection): a stanza for another key
        // shows as an AEAD failure here, which is "not ours", not an error.
        hpke::single_shot_open_inout_detached::<ChaCha20Poly1305, HkdfSha256, XWing>(
            &OpModeR::Base,
            &self.sk,
            &encapped,
            HPKE_INFO,
            hpke::inout::InOutBuf::from(&mut file_key[..]),
            b"",
            &tag,
        )
        .ok()
        .map(|()| {
            Ok(FileKey::init_with_mut(|key| {
                key.copy_from_slice(&file_key[..])
            }))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use age::{Identity as _, Recipient as _};

    /// The worked example of the age spec (c2sp.org/age, the MLKEM768-X25519 section):
    /// an identity, its recipient, and a stanza.
    const SPEC_IDENTITY: &str =
        "AGE-SECRET-KEY-PQ-1XX76JRALNLXDMEW0CRK45QMCCH4X06SE84UN3VPM33W6HWDX0H3SK3ZQFR";
    const SPEC_RECIPIENT: &str = include_str!("testdata/spec_recipient.txt");
    const SPEC_STANZA: &str = include_str!("testdata/spec_stanza.txt");

    fn copy(s: &Stanza) -> Stanza {
        Stanza {
            tag: s.tag.clone(),
            args: s.args.clone(),
            body: s.body.clone(),
        }
    }

    fn new_file_key() -> FileKey {
        FileKey::init_with_mut(|k| rand::rngs::OsRng.fill_bytes(k))
    }

    fn wrap(recipient: &Recipient, file_key: &FileKey) -> Stanza {
        let (mut stanzas, labels) = recipient.wrap_file_key(file_key).unwrap();
        assert_eq!(labels, HashSet::from([POSTQUANTUM_LABEL.to_string()]));
        assert_eq!(stanzas.len(), 1);
        stanzas.remove(0)
    }

    #[test]
    fn spec_identity_gives_spec_recipient() {
        let identity: Identity = SPEC_IDENTITY.parse().unwrap();
        assert_eq!(identity.to_public().to_string(), SPEC_RECIPIENT.trim());
        assert_eq!(identity.to_string().expose_secret(), SPEC_IDENTITY);
        let recipient: Recipient = SPEC_RECIPIENT.trim().parse().unwrap();
        assert_eq!(recipient.to_string(), SPEC_RECIPIENT.trim());
        assert_eq!(SPEC_RECIPIENT.trim().len(), 1959);
    }

    #[test]
    fn spec_stanza_opens_with_spec_identity() {
        let (rest, stanza) = age_core::format::read::age_stanza(SPEC_STANZA.as_bytes()).unwrap();
        assert!(rest.is_empty());
        let stanza = Stanza::from(stanza);
        assert_eq!(stanza.tag, STANZA_TAG);
        let identity: Identity = SPEC_IDENTITY.parse().unwrap();
        assert!(matches!(identity.unwrap_stanza(&stanza), Some(Ok(_))));
        let other = Identity::generate();
        assert!(other.unwrap_stanza(&stanza).is_none());
    }

    #[test]
    fn wraps_and_unwraps() {
        let identity = Identity::generate();
        let file_key = new_file_key();
        let stanza = wrap(&identity.to_public(), &file_key);
        assert_eq!(stanza.tag, STANZA_TAG);
        assert_eq!(stanza.args.len(), 1);
        assert_eq!(
            BASE64_STANDARD_NO_PAD
                .decode(&stanza.args[0])
                .unwrap()
                .len(),
            ENC_LEN
        );
        assert_eq!(stanza.body.len(), BODY_LEN);
        let opened = identity.unwrap_stanza(&stanza).unwrap().unwrap();
        assert_eq!(opened.expose_secret(), file_key.expose_secret());
        // Another key: not ours, not an error. Another stanza type: ignored.
        assert!(Identity::generate().unwrap_stanza(&stanza).is_none());
        let mut x25519 = copy(&stanza);
        x25519.tag = "X25519".into();
        assert!(identity.unwrap_stanza(&x25519).is_none());
    }

    #[test]
    fn identity_round_trips_through_its_encoding() {
        let identity = Identity::generate();
        let text = identity.to_string();
        assert!(text.expose_secret().starts_with(IDENTITY_PREFIX));
        let again: Identity = text.expose_secret().parse().unwrap();
        assert_eq!(
            again.to_public().to_string(),
            identity.to_public().to_string()
        );
    }

    /// Points of low order on Curve25519: u = 0 (order 2), u = 1 (order 4) and a point of
    /// order 8; X25519 with any of them gives the all-zero shared secret.
    fn low_order_points() -> Vec<[u8; 32]> {
        let mut order8 = [0u8; 32];
        order8.copy_from_slice(
            &(0..32)
                .map(|i| {
                    u8::from_str_radix(
                        &"e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"
                            [2 * i..2 * i + 2],
                        16,
                    )
                    .unwrap()
                })
                .collect::<Vec<_>>(),
        );
        let mut one = [0u8; 32];
        one[0] = 1;
        vec![[0u8; 32], one, order8]
    }

    #[test]
    fn rejects_a_low_order_x25519_share() {
        let identity = Identity::generate();
        let stanza = wrap(&identity.to_public(), &new_file_key());
        let enc = BASE64_STANDARD_NO_PAD.decode(&stanza.args[0]).unwrap();
        for point in low_order_points() {
            let mut bad = enc.clone();
            bad[ENC_LEN - 32..].copy_from_slice(&point);
            let mut s = copy(&stanza);
            s.args = vec![BASE64_STANDARD_NO_PAD.encode(&bad)];
            // An error, not "another key's stanza": without the check the AEAD would
            // merely fail and the stanza would be skipped.
            assert!(
                matches!(
                    identity.unwrap_stanza(&s),
                    Some(Err(DecryptError::InvalidHeader))
                ),
                "share {point:02x?} accepted"
            );
        }
        // A valid share that is not ours is skipped, not an error.
        let mut other = enc.clone();
        other[ENC_LEN - 1] ^= 0x40;
        let mut s = copy(&stanza);
        s.args = vec![BASE64_STANDARD_NO_PAD.encode(&other)];
        assert!(identity.unwrap_stanza(&s).is_none());
    }

    #[test]
    fn refuses_a_recipient_with_a_low_order_x25519_key() {
        let good: Recipient = SPEC_RECIPIENT.trim().parse().unwrap();
        let mut bytes = good.0.to_bytes().to_vec();
        for point in low_order_points() {
            bytes[PUBLIC_KEY_LEN - 32..].copy_from_slice(&point);
            let text = bech32_encode(RECIPIENT_HRP, &bytes);
            let err = text.parse::<Recipient>().unwrap_err();
            assert!(err.contains("low order"), "{err}");
        }
    }

    #[test]
    fn rejects_malformed_stanzas() {
        let identity = Identity::generate();
        let stanza = wrap(&identity.to_public(), &new_file_key());
        let invalid = |s: &Stanza| {
            matches!(
                identity.unwrap_stanza(s),
                Some(Err(DecryptError::InvalidHeader))
            )
        };
        let mut s = copy(&stanza);
        s.args.push("extra".into());
        assert!(invalid(&s), "three arguments");
        let mut s = copy(&stanza);
        s.args.clear();
        assert!(invalid(&s), "one argument");
        let mut s = copy(&stanza);
        s.args[0].push('=');
        assert!(invalid(&s), "padded base64");
        let mut s = copy(&stanza);
        let shorter = s.args[0].len() - 4;
        s.args[0].truncate(shorter);
        assert!(invalid(&s), "enc too short");
        // Non-canonical base64: the last character carries bits past the 1120 bytes.
        let mut s = copy(&stanza);
        let last = s.args[0].pop().unwrap();
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let pos = alphabet.iter().position(|&c| c == last as u8).unwrap();
        s.args[0].push(alphabet[pos ^ 1] as char);
        assert!(invalid(&s), "non-canonical base64");
        for len in [31, 33, 0] {
            let mut s = copy(&stanza);
            s.body.resize(len, 0);
            assert!(invalid(&s), "body of {len} bytes");
        }
    }

    #[test]
    fn parsing_is_strict() {
        let identity = Identity::generate();
        let secret = identity.to_string();
        let secret = secret.expose_secret();
        let recipient = identity.to_public().to_string();
        let bad_identities = [
            secret.to_lowercase(),
            format!("{secret} "),
            format!(" {secret}"),
            secret[..secret.len() - 1].to_string(),
            format!(
                "{}{}",
                &secret[..secret.len() - 1],
                if secret.ends_with('Q') { 'P' } else { 'Q' }
            ),
            bech32_encode(IDENTITY_HRP, &[7u8; 31]).to_uppercase(),
            bech32_encode(IDENTITY_HRP, &[7u8; 33]).to_uppercase(),
            bech32::encode(IDENTITY_HRP, [7u8; 32].to_base32(), Variant::Bech32m)
                .unwrap()
                .to_uppercase(),
            bech32_encode("age-secret-key-", &[7u8; 32]).to_uppercase(),
            recipient.clone(),
        ];
        for bad in &bad_identities {
            assert!(
                bad.parse::<Identity>().is_err(),
                "accepted identity {bad:.30}"
            );
        }
        let bytes = identity.to_public().0.to_bytes();
        let bad_recipients = [
            recipient.to_uppercase(),
            format!("{recipient} "),
            recipient[..recipient.len() - 1].to_string(),
            bech32_encode(RECIPIENT_HRP, &bytes[..PUBLIC_KEY_LEN - 1]),
            bech32::encode(RECIPIENT_HRP, bytes.to_base32(), Variant::Bech32m).unwrap(),
            bech32_encode("age1pqx", &bytes),
            secret.to_string(),
        ];
        for bad in &bad_recipients {
            assert!(
                bad.parse::<Recipient>().is_err(),
                "accepted recipient {bad:.30}"
            );
        }
        // An ML-KEM key whose coefficients are out of range (all 0xff) is refused.
        let mut unreduced = bytes.to_vec();
        unreduced[..1184].fill(0xff);
        assert!(bech32_encode(RECIPIENT_HRP, &unreduced)
            .parse::<Recipient>()
            .is_err());
    }

    #[test]
    fn identity_errors_never_quote_the_key() {
        let secret = Identity::generate().to_string();
        let mut broken = secret.expose_secret().to_string();
        broken.replace_range(30..31, "!");
        let err = broken.parse::<Identity>().unwrap_err();
        assert!(!err.contains(&broken[19..29]), "{err}");
    }
}
