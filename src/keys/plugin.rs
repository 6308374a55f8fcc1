//! Recipients (`age1<name>1…`) and identities (`AGE-PLUGIN-<NAME>-1…`) served by an age
//! plugin: a separate program, `age-plugin-<name>`, found on `PATH` as age finds it, that
//! speaks the age plugin protocol (C2SP age-plugin; client side in the age crate's
//! `plugin` feature). Hardware tokens (age-plugin-yubikey, age-plugin-tpm) and key
//! services reach age this way.
//!
//! A plugin may ask its user for something while it works: a PIN or passphrase
//! (`request-secret`), a value (`request-public`), a yes/no (`confirm`), or show a message
//! ("touch your key"). gpbackup runs data commands without a terminal, and whatever
//! they write on stderr fails the restore; so by default every request is refused, the
//! request is remembered, and the failure names the plugin and what it asked for, on
//! one line. Commands run by a person (`verify`, `rotate`, `inspect`) call
//! [`answer_on_terminal`] first: then requests are answered on the controlling
//! terminal (`/dev/tty`, secrets without echo), and refused as above when there is
//! none. Data commands never open `/dev/tty`.

use std::fmt;
use std::io::{self, Read, Write};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use age::secrecy::SecretString;
use age_core::format::{FileKey, Stanza};

/// Identities of this form are served by a plugin.
pub const IDENTITY_PREFIX: &str = "AGE-PLUGIN-";

static TERMINAL: AtomicBool = AtomicBool::new(false);

/// Lets plugins' requests be answered on the controlling terminal, for the rest of
/// the process: for the commands a person runs. Data commands never call it.
pub fn answer_on_terminal() {
    TERMINAL.store(true, Ordering::Relaxed);
}

/// True when `text` is a plugin recipient: `age1<name>1…` with a non-empty plugin name
/// (an X25519 recipient is `age1` followed directly by its data, and a post-quantum one
/// `age1pq1…`, which the caller tells apart first).
pub fn is_recipient(text: &str) -> bool {
    age::plugin::Recipient::from_str(text).is_ok()
}

/// The binary that serves plugin `name`.
fn binary_name(name: &str) -> String {
    format!("age-plugin-{name}")
}

/// Why a plugin cannot be used here: not on `PATH`.
fn not_on_path(name: &str) -> String {
    let path = std::env::var("PATH").unwrap_or_default();
    format!(
        "needs the age plugin program {}, which is not on PATH ({path}); install it on this host or add its directory to PATH for the user gpbackup runs as",
        binary_name(name)
    )
}

/// A recipient served by a plugin; wrapping runs the plugin.
#[derive(Clone)]
pub struct Recipient {
    inner: Arc<age::plugin::RecipientPluginV1<Prompter>>,
    prompter: Prompter,
}

impl Recipient {
    /// Parses `text` (`age1<name>1…`) and finds its plugin on `PATH`. The error says
    /// which plugin is missing, or that the text is not a plugin recipient.
    pub fn parse(text: &str) -> Result<Recipient, String> {
        let recipient = age::plugin::Recipient::from_str(text)
            .map_err(|e| format!("not a valid age plugin recipient: {e}"))?;
        let name = recipient.plugin().to_string();
        let prompter = Prompter::new(&name);
        let inner = age::plugin::RecipientPluginV1::new(&name, &[recipient], &[], prompter.clone())
            .map_err(|_| not_on_path(&name))?;
        Ok(Recipient {
            inner: Arc::new(inner),
            prompter,
        })
    }
}

impl age::Recipient for Recipient {
    fn wrap_file_key(
        &self,
        file_key: &FileKey,
    ) -> Result<(Vec<Stanza>, std::collections::HashSet<String>), age::EncryptError> {
        self.prompter.forget();
        self.inner.wrap_file_key(file_key).map_err(|e| {
            age::EncryptError::Io(io::Error::other(self.prompter.failure(&e.to_string())))
        })
    }
}

/// How long a plugin that showed a message with nobody to see it ("touch your key")
/// may take to finish before the call gives up on it: enough for a plugin that only
/// informs and goes on, far less than a token's wait for a touch.
const UNSEEN_MESSAGE_GRACE: Duration = Duration::from_secs(5);

/// An identity served by a plugin; unwrapping runs the plugin.
pub struct Identity {
    name: String,
    inner: Arc<age::plugin::IdentityPluginV1<Prompter>>,
    prompter: Prompter,
    /// One unwrap at a time: a token serves one request at once, a person answers one
    /// prompt at once, and the prompter's record is per call.
    busy: Mutex<()>,
}

impl Identity {
    /// Parses one `AGE-PLUGIN-<NAME>-1…` line and finds its plugin on `PATH`. Errors
    /// never quote the line (it may be secret).
    pub fn parse(line: &str) -> Result<Identity, String> {
        let identity = age::plugin::Identity::from_str(line)
            .map_err(|_| "not a valid age plugin identity (AGE-PLUGIN-…-1…)".to_string())?;
        let name = identity.plugin().to_string();
        let prompter = Prompter::new(&name);
        let inner = age::plugin::IdentityPluginV1::new(&name, &[identity], prompter.clone())
            .map_err(|_| format!("a plugin identity {}", not_on_path(&name)))?;
        Ok(Identity {
            name,
            inner: Arc::new(inner),
            prompter,
            busy: Mutex::new(()),
        })
    }

    /// The plugin's program name, `age-plugin-<name>`.
    pub fn plugin(&self) -> String {
        binary_name(&self.name)
    }
}

impl age::Identity for Identity {
    fn unwrap_stanza(&self, stanza: &Stanza) -> Option<Result<FileKey, age::DecryptError>> {
        self.unwrap_stanzas(std::slice::from_ref(stanza))
    }

    fn unwrap_stanzas(&self, stanzas: &[Stanza]) -> Option<Result<FileKey, age::DecryptError>> {
        let _one = self.busy.lock().unwrap_or_else(|e| e.into_inner());
        self.prompter.forget();
        // The plugin runs on a thread of its own, so that a message nobody can see
        // (which gets no answer to refuse) does not leave the call waiting on the
        // plugin: after UNSEEN_MESSAGE_GRACE the call fails, naming the message. The
        // plugin process is then left to its own timeout; a data command exits soon
        // after, which closes its pipes.
        let (tx, rx) = mpsc::channel();
        self.prompter.notify(Some(tx.clone()));
        let inner = Arc::clone(&self.inner);
        let stanzas: Vec<Stanza> = stanzas
            .iter()
            .map(|s| Stanza {
                tag: s.tag.clone(),
                args: s.args.clone(),
                body: s.body.clone(),
            })
            .collect();
        std::thread::spawn(move || {
            let _ = tx.send(Event::Done(inner.unwrap_stanzas(&stanzas)));
        });
        let mut waiting_for_attention = false;
        let result = loop {
            let event = if waiting_for_attention {
                rx.recv_timeout(UNSEEN_MESSAGE_GRACE).ok()
            } else {
                rx.recv().ok()
            };
            match event {
                Some(Event::Done(result)) => break result,
                Some(Event::Unseen) => waiting_for_attention = true,
                None => {
                    self.prompter.notify(None);
                    return Some(Err(age::DecryptError::Io(io::Error::other(
                        self.prompter.unanswered(),
                    ))));
                }
            }
        };
        self.prompter.notify(None);
        match result {
            Some(Err(e)) => Some(Err(age::DecryptError::Io(io::Error::other(
                self.prompter.failure(&e.to_string()),
            )))),
            // A plugin that got no answer and says nothing has still failed for it.
            None if self.prompter.refused().is_some() => Some(Err(age::DecryptError::Io(
                io::Error::other(self.prompter.failure("it returned no file key")),
            ))),
            other => other,
        }
    }
}

/// What a plugin asked for, in words: "a PIN or passphrase (\"Enter PIN\")".
#[derive(Clone, Debug)]
struct Request(String);

impl fmt::Display for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Answers (or refuses) one plugin's requests, and remembers the first it refused.
#[derive(Clone)]
struct Prompter {
    binary: String,
    refused: Arc<Mutex<Option<Request>>>,
    /// The last message shown with nobody to see it.
    shown: Arc<Mutex<Option<String>>>,
    /// Told when a message is shown with nobody to see it.
    events: Arc<Mutex<Option<mpsc::Sender<Event>>>>,
}

/// What the thread running a plugin reports to the call waiting on it.
enum Event {
    /// A message was shown with nobody to see it.
    Unseen,
    Done(Option<Result<FileKey, age::DecryptError>>),
}

impl Prompter {
    fn new(name: &str) -> Prompter {
        Prompter {
            binary: binary_name(name),
            refused: Arc::new(Mutex::new(None)),
            shown: Arc::new(Mutex::new(None)),
            events: Arc::new(Mutex::new(None)),
        }
    }

    fn notify(&self, to: Option<mpsc::Sender<Event>>) {
        *self.events.lock().unwrap_or_else(|e| e.into_inner()) = to;
    }

    /// The line of a call given up on after a message nobody saw.
    fn unanswered(&self) -> String {
        let shown = self.shown.lock().unwrap_or_else(|e| e.into_inner()).clone();
        format!(
            "age plugin {} is waiting for attention (it showed \"{}\") and got no file key within {} s; gpbackup runs this command without a terminal, so nobody can see the message or touch the token; restore with an identity that needs no PIN, touch or confirmation (keys/README.md, \"Hardware-held identities\")",
            self.binary,
            shown.unwrap_or_default(),
            UNSEEN_MESSAGE_GRACE.as_secs()
        )
    }

    fn forget(&self) {
        *self.refused.lock().unwrap_or_else(|e| e.into_inner()) = None;
        *self.shown.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    fn refused(&self) -> Option<Request> {
        self.refused
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn refuse<T>(&self, request: String) -> Option<T> {
        let mut refused = self.refused.lock().unwrap_or_else(|e| e.into_inner());
        refused.get_or_insert(Request(request));
        None
    }

    /// The one line a failed plugin call ends in: what it asked for that nobody could
    /// answer, else what the plugin said.
    fn failure(&self, plugin_said: &str) -> String {
        // The age crate's messages isolate names with U+2068/U+2069 (for Fluent).
        let mut said = crate::one_line(plugin_said).replace(['\u{2068}', '\u{2069}'], "");
        if let Some(message) = self
            .shown
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
        {
            said = format!("it showed \"{message}\", then: {said}");
        }
        match self.refused() {
            Some(request) if TERMINAL.load(Ordering::Relaxed) => format!(
                "age plugin {} asked for {request} and got no answer (no terminal to answer it on, or end of input) (plugin said: {said})",
                self.binary
            ),
            Some(request) => format!(
                "age plugin {} asked for {request}, but gpbackup runs this command without a terminal, so nobody can answer; restore with an identity that needs no PIN, touch or confirmation (keys/README.md, \"Hardware-held identities\") (plugin said: {said})",
                self.binary
            ),
            None => format!("age plugin {} failed: {said}", self.binary),
        }
    }

    /// The controlling terminal, when this command may use it and the process has one.
    fn terminal(&self) -> Option<std::fs::File> {
        if !TERMINAL.load(Ordering::Relaxed) {
            return None;
        }
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/tty")
            .ok()
    }

    /// Shows `prompt` on the terminal and reads one line, without echo when `secret`.
    fn ask(&self, prompt: &str, secret: bool) -> Option<zeroize::Zeroizing<String>> {
        let mut tty = self.terminal()?;
        write!(tty, "{}: {prompt} ", self.binary).ok()?;
        tty.flush().ok()?;
        let echo = if secret {
            // A secret is never read with echo on: if the terminal cannot turn echo
            // off, the request goes unanswered.
            Some(without_echo(&tty)?)
        } else {
            None
        };
        let line = read_line(&mut tty);
        if let Some(saved) = echo {
            let _ = rustix::termios::tcsetattr(&tty, rustix::termios::OptionalActions::Now, &saved);
            let _ = writeln!(tty);
        }
        line
    }
}

/// The longest answer read from the terminal, in bytes.
const MAX_ANSWER: usize = 1024;

/// One line from the terminal, without its line end; None at end of input. Read a byte
/// at a time into a zeroizing buffer: a buffered reader would keep a copy of a PIN.
fn read_line(tty: &mut std::fs::File) -> Option<zeroize::Zeroizing<String>> {
    // Allocated once: a growing Vec would leave copies of the PIN's prefix in freed
    // memory. A longer line is refused rather than reallocated.
    let mut line = zeroize::Zeroizing::new(Vec::with_capacity(MAX_ANSWER));
    let mut byte = zeroize::Zeroizing::new([0u8; 1]);
    loop {
        match tty.read(&mut byte[..]) {
            Ok(0) if line.is_empty() => return None,
            Ok(0) => break,
            Ok(_) if byte[0] == b'\n' => break,
            Ok(_) if line.len() == MAX_ANSWER => return None,
            Ok(_) => line.push(byte[0]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return None,
        }
    }
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    let text = std::str::from_utf8(&line).ok()?;
    Some(zeroize::Zeroizing::new(text.to_string()))
}

/// Turns echo off on `tty`; returns the settings to restore.
fn without_echo(tty: &std::fs::File) -> Option<rustix::termios::Termios> {
    let saved = rustix::termios::tcgetattr(tty).ok()?;
    let mut quiet = saved.clone();
    quiet.local_modes &= !rustix::termios::LocalModes::ECHO;
    rustix::termios::tcsetattr(tty, rustix::termios::OptionalActions::Now, &quiet).ok()?;
    Some(saved)
}

impl age::Callbacks for Prompter {
    fn display_message(&self, message: &str) {
        // A message needs no answer: shown on a person's terminal, else kept for the
        // failure line should the plugin then give up (it may wait for a touch).
        match self.terminal() {
            Some(mut tty) => {
                let _ = writeln!(tty, "{}: {message}", self.binary);
            }
            None => {
                *self.shown.lock().unwrap_or_else(|e| e.into_inner()) =
                    Some(crate::one_line(message));
                if let Some(events) = &*self.events.lock().unwrap_or_else(|e| e.into_inner()) {
                    let _ = events.send(Event::Unseen);
                }
            }
        }
    }

    fn confirm(&self, message: &str, yes_string: &str, no_string: Option<&str>) -> Option<bool> {
        let choices = match no_string {
            Some(no) => format!("[{yes_string}/{no}]"),
            None => format!("[{yes_string}]"),
        };
        match self.ask(&format!("{message} {choices}"), false) {
            Some(answer) => Some(answer.trim().eq_ignore_ascii_case(yes_string)),
            None => self.refuse(format!("a confirmation (\"{}\")", crate::one_line(message))),
        }
    }

    fn request_public_string(&self, description: &str) -> Option<String> {
        match self.ask(description, false) {
            Some(answer) => Some(answer.to_string()),
            None => self.refuse(format!("a value (\"{}\")", crate::one_line(description))),
        }
    }

    fn request_passphrase(&self, description: &str) -> Option<SecretString> {
        match self.ask(description, true) {
            Some(answer) => Some(SecretString::from(answer.to_string())),
            None => self.refuse(format!(
                "a PIN or passphrase (\"{}\")",
                crate::one_line(description)
            )),
        }
    }
}

/// Turns off age-core's protocol trace. With `AGEDEBUG=plugin` in the environment (an
/// operator may have set it while trying a token with stock `age`), age-core copies
/// every plugin message to stderr, file keys and identities included: secrets in
/// gpbackup's logs, and stderr text that gprestore takes for a failure. Called first
/// thing in every command, before any thread or plugin starts.
pub(crate) fn turn_off_protocol_trace() {
    std::env::remove_var("AGEDEBUG");
}

#[cfg(test)]
mod tests {
    use super::*;
    use age::Callbacks;

    #[test]
    fn plugin_recipients_are_told_apart_from_native_ones() {
        let (_, x25519) = crate::keys::kinds::generate(crate::keys::NewKey::X25519);
        assert!(!is_recipient(&x25519));
        use bech32::ToBase32;
        let token = bech32::encode(
            "age1yubikey",
            [1u8; 33].to_base32(),
            bech32::Variant::Bech32,
        );
        assert!(is_recipient(&token.unwrap()));
        assert!(!is_recipient("age1yubikey1notbech32"));
    }

    #[test]
    fn without_a_terminal_requests_are_refused_and_named() {
        // Data commands never call answer_on_terminal (this test binary does not).
        let p = Prompter::new("yubikey");
        assert_eq!(
            p.failure("boom"),
            "age plugin age-plugin-yubikey failed: boom"
        );
        p.display_message("Touch your YubiKey");
        assert_eq!(p.refused().map(|r| r.0), None);
        assert!(p.request_passphrase("Enter PIN for YubiKey").is_none());
        assert_eq!(p.confirm("Use it?", "yes", Some("no")), None);
        let line = p.failure("'\u{2068}age-plugin-yubikey\u{2069}' couldn't use an identity");
        assert!(
            line.starts_with("age plugin age-plugin-yubikey asked for a PIN or passphrase (\"Enter PIN for YubiKey\"), but gpbackup runs this command without a terminal"),
            "{line}"
        );
        assert!(
            line.ends_with("(plugin said: it showed \"Touch your YubiKey\", then: 'age-plugin-yubikey' couldn't use an identity)"),
            "{line}"
        );
        p.forget();
        assert!(p.refused().is_none());
    }
}
