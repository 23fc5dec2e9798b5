//! The command line: every command, argument and option of `tufctl`, as clap types. Each
//! command's behaviour lives in its own module; `main` dispatches.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(
    name = "tufctl",
    version,
    about = "Operator CLI for tuf-factory: offline TUF keys, root updates, targets and waves"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every command accepts, before or after the subcommand.
#[derive(Args, Clone, Debug, Default)]
pub struct Global {
    /// Server base URL, e.g. http://127.0.0.1:8080.
    #[arg(long, env = "TUFCTL_API", global = true)]
    pub api: Option<String>,
    /// API token (admin, owner, ci or read, depending on the command).
    #[arg(long, env = "TUFCTL_TOKEN", global = true, hide_env_values = true)]
    pub token: Option<String>,
    /// Factory name.
    #[arg(long, env = "TUFCTL_FACTORY", global = true)]
    pub factory: Option<String>,
    /// Config file with api, token and factory (JSON object, or `key = value` lines).
    #[arg(long, env = "TUFCTL_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// Print machine-readable JSON instead of human output.
    #[arg(long, global = true)]
    pub json: bool,
    /// File holding the passphrase of an encrypted credentials file (else TUFCTL_PASSPHRASE).
    #[arg(long, global = true)]
    pub passphrase_file: Option<PathBuf>,
    /// PKCS#11 module (shared library) of hardware tokens. With --slot it is where a new key
    /// is generated; otherwise it replaces the module path recorded with a token key
    /// (modules live in different places on different machines). Without it, a recorded
    /// module is loaded only from a system location (owned by root, writable by nobody else).
    #[arg(long = "pkcs11", value_name = "MODULE", global = true)]
    pub pkcs11: Option<PathBuf>,
    /// File holding the hardware token's PIN (else TUFCTL_PKCS11_PIN, else a prompt).
    #[arg(long, global = true)]
    pub pin_file: Option<PathBuf>,
    /// CA certificate(s) (PEM) to trust for https instead of the system's: a private CA.
    #[arg(long, env = "TUFCTL_CA_FILE", global = true)]
    pub ca_file: Option<PathBuf>,
    /// Send the token (or a one-time credentials URL) over plain http to a host that is not
    /// loopback. Anyone on the network between can read it: only on a network you trust.
    #[arg(long, global = true)]
    pub allow_insecure_http: bool,
}

#[derive(Subcommand)]
pub enum Command {
    /// Factories (admin).
    Factory {
        #[command(subcommand)]
        command: FactoryCommand,
    },
    /// Offline keys: download, rotate, copy, inspect.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// GET any API path and print the response body.
    Get {
        /// A path such as /ota/repo/<FACTORY>/api/v1/user_repo/root.json?production=1
        path: String,
    },
    /// CI targets.
    Targets {
        #[command(subcommand)]
        command: TargetsCommand,
    },
    /// The Factory's API tokens (owner or admin token).
    Tokens {
        #[command(subcommand)]
        command: TokensCommand,
    },
    /// Production releases signed with the offline targets key.
    Waves {
        #[command(subcommand)]
        command: WavesCommand,
    },
    /// Sign a request file on an offline machine (no server settings, no network): the
    /// request is verified from the root the credentials file trusts, shown, and signed
    /// after confirmation. CREDS.tgz is only read.
    Sign {
        /// The request file written by `keys tuf updates export` or `waves init --export`.
        request: PathBuf,
        /// The credentials file holding the key(s) to sign with (plain or encrypted).
        #[arg(short = 'k', long = "keys")]
        creds: PathBuf,
        /// Where to write the signed response.
        #[arg(long)]
        out: PathBuf,
        /// Sign without asking (after reviewing the request some other way).
        #[arg(long)]
        yes: bool,
        /// Also write the response as a QR code PNG (the same JSON text; for a wave, its
        /// signatures and the targets' hash: import that with `waves import --request`).
        #[arg(long)]
        qr: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
pub enum FactoryCommand {
    /// Create a Factory (admin token); prints its tokens and the one-time credentials URL.
    Create { name: String },
}

#[derive(Clone, Copy, Debug, Default, ValueEnum)]
pub enum KeyTypeArg {
    #[default]
    Ed25519,
    Ecdsa,
    Rsa,
}

impl KeyTypeArg {
    pub fn key_type(self) -> tuf_core::KeyType {
        match self {
            Self::Ed25519 => tuf_core::KeyType::Ed25519,
            Self::Ecdsa => tuf_core::KeyType::EcdsaP256,
            Self::Rsa => tuf_core::KeyType::Rsa3072,
        }
    }
}

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Fetch the one-time credentials tarball (written 0600, never overwrites).
    Download {
        url: String,
        out: PathBuf,
        /// Encrypt it with a passphrase before it is written (it never touches the disk in
        /// plain text).
        #[arg(long)]
        encrypt: bool,
    },
    /// Encrypt a credentials file with a passphrase (age format), in place.
    Encrypt { creds: PathBuf },
    /// Decrypt a credentials file in place (it then holds the private keys in plain text).
    Decrypt { creds: PathBuf },
    /// Write the active root private key(s) as a plain text .sec file (0600, never
    /// overwrites) for offline backup.
    ExportRoot {
        creds: PathBuf,
        /// Output file (default: <key name>.sec in the current directory).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Replace the root key with a new offline key kept only in CREDS.tgz (or, with
    /// --pkcs11 MODULE --slot S, generated on a hardware token).
    RotateRoot {
        #[arg(long, value_enum, default_value_t)]
        key_type: KeyTypeArg,
        /// Generate the new key on the hardware token in this slot (slot ID or token label)
        /// of the --pkcs11 module; the file then records only a reference to it.
        #[arg(long, value_name = "SLOT")]
        slot: Option<String>,
        /// Owner recorded in x-key-owners (default $USER@hostname).
        #[arg(long)]
        owner: Option<String>,
        /// Cancel an open root-update transaction left by an interrupted run first.
        #[arg(long)]
        cancel_open: bool,
        creds: PathBuf,
    },
    /// Create (or replace) the offline targets key production devices require.
    RotateTargets {
        #[arg(long, value_enum, default_value_t)]
        key_type: KeyTypeArg,
        /// Generate the new key on the hardware token in this slot (slot ID or token label)
        /// of the --pkcs11 module.
        #[arg(long, value_name = "SLOT")]
        slot: Option<String>,
        #[arg(long)]
        owner: Option<String>,
        #[arg(long)]
        cancel_open: bool,
        creds: PathBuf,
    },
    /// Replace the server's online keys (after a server compromise): tufd generates new
    /// keys for the roles, the root key in CREDS.tgz signs the new roots. Refused while a
    /// wave is in progress.
    RotateOnline {
        #[arg(long, value_delimiter = ',', default_value = "targets,snapshot,timestamp",
              value_parser = ["targets", "snapshot", "timestamp"])]
        roles: Vec<String>,
        #[arg(long, value_enum, default_value_t)]
        key_type: KeyTypeArg,
        #[arg(long)]
        cancel_open: bool,
        creds: PathBuf,
    },
    /// Write a second tarball holding only the active offline targets key(s).
    CopyTargets { creds: PathBuf, out: PathBuf },
    /// Print the Factory's current root.json.
    ShowRoot {
        /// The production root instead of the CI root.
        #[arg(long)]
        prod: bool,
    },
    /// Paper backup: split the active root key (and with --include-targets the offline
    /// targets key) into N Shamir shares, any K of which restore it; writes printable HTML,
    /// PNG (the whole sheet: text and QR code) and .txt files per share.
    Backup {
        creds: PathBuf,
        #[arg(long, value_parser = clap::value_parser!(u8).range(2..=255))]
        shares: u8,
        #[arg(long, value_parser = clap::value_parser!(u8).range(2..=255))]
        threshold: u8,
        #[arg(long)]
        out: PathBuf,
        #[arg(long)]
        include_targets: bool,
    },
    /// Rebuild a key from Shamir shares (share files, typed text files, or scanned QR
    /// payloads) into a credentials file.
    Restore {
        #[arg(required = true)]
        shares: Vec<String>,
        #[arg(long)]
        out: PathBuf,
        /// Require the key to be in the Factory's current root (server must be reachable).
        #[arg(long)]
        factory_check: bool,
        /// Write a new file encrypted with a passphrase (age format) instead of plain text.
        #[arg(long)]
        encrypt: bool,
    },
    /// Which keys in the file are active, inactive or missing.
    Status { creds: PathBuf },
    /// Generate a new root or targets key into CREDS.tgz on the offline machine (no server,
    /// no network) and write its public part to OUT, for `keys tuf updates add-offline-key
    /// --public-key OUT` on the online machine.
    Generate {
        creds: PathBuf,
        #[arg(long, value_parser = ["root", "targets"])]
        role: String,
        #[arg(long, value_enum, default_value_t)]
        key_type: KeyTypeArg,
        /// Generate the key on the hardware token in this slot (slot ID or token label) of
        /// the --pkcs11 module.
        #[arg(long, value_name = "SLOT")]
        slot: Option<String>,
        /// Who holds the key (shown to every signer); default USER@hostname.
        #[arg(long)]
        owner: Option<String>,
        /// Where to write the public-key file (never overwritten).
        #[arg(long)]
        out: PathBuf,
    },
    /// Renew the roots before they expire: version + 1 and a new expiry, nothing else
    /// changed; signed with the root key(s) in CREDS.tgz and applied, or exported for
    /// signing on an offline machine.
    ResignRoot {
        creds: PathBuf,
        #[arg(long, default_value_t = 365,
              value_parser = clap::value_parser!(u32).range(1..=1826))]
        expires_days: u32,
        /// Stage the renewal and write a signing request instead of signing here.
        #[arg(long)]
        export: Option<PathBuf>,
        /// Cancel an open root-update transaction first.
        #[arg(long)]
        cancel_open: bool,
    },
    /// Root-update transactions, step by step (threshold roots, several key holders).
    Tuf {
        #[command(subcommand)]
        command: TufCommand,
    },
}

#[derive(Subcommand)]
pub enum TufCommand {
    /// Root-update transactions.
    Updates {
        #[command(subcommand)]
        command: UpdatesCommand,
    },
}

#[derive(Subcommand)]
pub enum UpdatesCommand {
    /// Open a transaction: the current roots with version + 1.
    Init {
        #[arg(short, long)]
        message: String,
    },
    /// Show staged versus current roots and the signatures still missing.
    Review,
    /// Sign the staged roots (and production targets) with the keys in a credentials file.
    Sign {
        /// The credentials file holding this holder's key(s) (plain or encrypted).
        #[arg(short = 'k', long = "keys")]
        creds: PathBuf,
    },
    /// Commit the transaction (the server runs every check).
    Apply,
    /// Abort the transaction.
    Cancel,
    /// Write the open transaction as a signing request for `tufctl sign` on an offline machine.
    Export { out: PathBuf },
    /// Add the signatures of a signed response (a file, `-` for standard input, or the
    /// scanned QR payload text).
    Import { response: String },
    /// Change a role's threshold in the staged roots (targets: production root only).
    SetThreshold {
        #[arg(long)]
        role: String,
        threshold: u64,
    },
    /// Remove a key from the staged roots (a lost or retired key holder's): from every role
    /// that lists it, or only from --role, and from `keys` once no role uses it. KEYID may be
    /// a unique prefix of at least 8 hex digits. The current root's threshold of the other
    /// holders signs the change; the removed key's holder is not needed.
    RemoveKey {
        keyid: String,
        #[arg(long, value_parser = ["root", "targets"])]
        role: Option<String>,
    },
    /// Add a new offline key to the root or targets role of the staged roots.
    AddOfflineKey {
        #[arg(long)]
        role: String,
        #[arg(long, value_enum, default_value_t)]
        key_type: KeyTypeArg,
        /// Generate the new key on the hardware token in this slot (slot ID or token label)
        /// of the --pkcs11 module.
        #[arg(long, value_name = "SLOT")]
        slot: Option<String>,
        #[arg(long)]
        owner: Option<String>,
        /// The credentials file the new key is generated into (created when missing).
        #[arg(short = 'k', long = "keys", required_unless_present = "public_key")]
        creds: Option<PathBuf>,
        /// Add a key generated on an offline machine by `tufctl keys generate` (its
        /// public-key file) instead of generating one here.
        #[arg(long, conflicts_with_all = ["creds", "slot"])]
        public_key: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
pub enum TargetsCommand {
    /// Add a target to the CI targets (ci or owner token).
    Add(AddArgs),
}

#[derive(Subcommand)]
pub enum TokensCommand {
    /// List the Factory's tokens: ID, scope, creation time (never the secret).
    List,
    /// Create a token; its secret is printed once.
    Create {
        #[arg(value_parser = ["owner", "ci", "read"])]
        scope: String,
    },
    /// Revoke one token by ID, or every token of the Factory with --all.
    Revoke {
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        id: Option<String>,
        /// Revoke all tokens of the Factory, including the one making the request.
        #[arg(long)]
        all: bool,
        /// With --all: keep the token making the request.
        #[arg(long, requires = "all")]
        keep_current: bool,
    },
}

#[derive(Subcommand)]
pub enum WavesCommand {
    /// Propose production targets for VERSION, tagged TAG, signed with the offline key (or
    /// exported unsigned as a signing request with --export).
    Init {
        #[arg(short = 'k', long = "keys", required_unless_present = "export")]
        creds: Option<PathBuf>,
        wave: String,
        version: String,
        tag: String,
        /// Days until the production targets expire; production devices stop updating then,
        /// unless a newer Wave replaces them (`keys status` warns 30 days ahead).
        #[arg(long, default_value_t = 365,
              value_parser = clap::value_parser!(u32).range(1..=3650))]
        expires_days: u32,
        /// Write the proposed targets as a signing request for `tufctl sign` instead of
        /// signing here (no private key needed).
        #[arg(long)]
        export: Option<PathBuf>,
        /// Retire every production target of this build version (repeatable): the wave
        /// takes them out of production, and the review shows what leaves.
        #[arg(long = "retire-version", value_name = "VERSION")]
        retire_versions: Vec<String>,
        /// Retire the production target at this path, NAME-VERSION as `targets.json` lists
        /// it (repeatable).
        #[arg(long = "retire", value_name = "TARGET")]
        retire_targets: Vec<String>,
    },
    /// Create a wave from a signed response of `tufctl sign` (a file, `-`, or the QR
    /// payload text).
    Import {
        response: String,
        /// The request the response answers: needed for a response from a QR code, which
        /// names the wave's targets by hash only.
        #[arg(long)]
        request: Option<PathBuf>,
    },
    /// Re-sign the production targets of the wave in production with a new version and
    /// expiry, nothing else changed.
    Resign {
        #[arg(short = 'k', long = "keys")]
        creds: PathBuf,
        wave: String,
        #[arg(long, default_value_t = 365,
              value_parser = clap::value_parser!(u32).range(1..=3650))]
        expires_days: u32,
    },
    /// Publish the wave as the production targets.
    Complete { wave: String },
    /// Abort the wave.
    Cancel { wave: String },
    /// List waves.
    List,
}

/// `targets add`.
#[derive(Args)]
pub struct AddArgs {
    #[arg(long)]
    pub name: String,
    #[arg(long)]
    pub version: String,
    #[arg(long = "hardware-id", required = true)]
    pub hardware_ids: Vec<String>,
    #[arg(long = "tag")]
    pub tags: Vec<String>,
    /// Upload this artifact (its hash and length are computed by the server).
    #[arg(long, conflicts_with_all = ["sha256", "length"])]
    pub file: Option<PathBuf>,
    #[arg(long, requires = "length")]
    pub sha256: Option<String>,
    #[arg(long, requires = "sha256")]
    pub length: Option<u64>,
}
