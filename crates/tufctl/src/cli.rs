//! The command line: every command, argument and option of `tufctl`, as clap types. Each
//! command's behaviour lives in its own module; `main` dispatches. Every argument has help
//! text and every command an example in its long help (`--help`); a test walks the tree.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(
    name = "tufctl",
    version,
    about = "Operator CLI for tuf-factory: offline TUF keys, root updates, targets and waves",
    long_about = "Operator CLI for tuf-factory: offline TUF keys, root updates, targets and \
        waves.\n\nCommands that take a credentials file (CREDS.tgz) read the server and the \
        Factory from it; the others from --api/--factory, TUFCTL_* variables or the config \
        file. The token comes from --token-file, the config file's token_file, or `tufctl \
        login`.",
    after_long_help = TOP_HELP
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

const TOP_HELP: &str = "\
Examples:
  tufctl login --api https://tufd.example.com --factory acme < owner-token
  tufctl keys status acme.tgz
  tufctl targets list --hardware-id board-a
  tufctl --json waves show wave-42

Files:
  $XDG_CONFIG_HOME/tufctl/config.toml (else ~/.config/tufctl/config.toml): TOML with the keys
  api, factory, token_file and ca_file; other keys are refused. logins.toml beside it holds
  the tokens `tufctl login` stored (0600).

Exit codes:
  0  success
  1  error
  2  usage: the arguments were refused
  3  verification refused: a named check failed (here or on the server); nothing was signed
  4  expiring: `keys status --check` found metadata expiring within --within DAYS

With --json, output is JSON and an error is {\"error\": ..., \"detail\": ...} on standard
error. See docs/CLI.md.";

/// Flags every command accepts, before or after the subcommand.
#[derive(Args, Clone, Debug, Default)]
#[command(next_help_heading = "Global options")]
pub struct Global {
    /// Server base URL, e.g. https://tufd.example.com (default: a credentials file's server,
    /// else the config file's).
    #[arg(long, env = "TUFCTL_API", global = true, value_name = "URL")]
    pub api: Option<String>,
    /// API token. Other users see it in `ps`: prefer --token-file or `tufctl login`.
    #[arg(
        long,
        env = "TUFCTL_TOKEN",
        global = true,
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub token: Option<String>,
    /// File holding the API token on one line (`-`: standard input); wins over --token.
    #[arg(long, env = "TUFCTL_TOKEN_FILE", global = true, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// Factory name (a credentials file's wins; a different one is an error).
    #[arg(long, env = "TUFCTL_FACTORY", global = true, value_name = "NAME")]
    pub factory: Option<String>,
    /// Config file (TOML: api, factory, token_file, ca_file) instead of
    /// $XDG_CONFIG_HOME/tufctl/config.toml.
    #[arg(long, env = "TUFCTL_CONFIG", global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Print JSON instead of human output; errors become {"error", "detail"} on stderr.
    #[arg(long, global = true)]
    pub json: bool,
    /// File holding the passphrase of an encrypted credentials file (else TUFCTL_PASSPHRASE).
    #[arg(long, global = true, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,
    /// PKCS#11 module (shared library) of hardware tokens. With --slot it is where a new key
    /// is generated; otherwise it replaces the module path recorded with a token key
    /// (modules live in different places on different machines). Without it, a recorded
    /// module is loaded only from a system location (owned by root, writable by nobody else).
    #[arg(long = "pkcs11", value_name = "MODULE", global = true)]
    pub pkcs11: Option<PathBuf>,
    /// File holding the hardware token's PIN (else TUFCTL_PKCS11_PIN, else a prompt).
    #[arg(long, global = true, value_name = "FILE")]
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
    /// Factories (admin token).
    #[command(
        after_long_help = "Example:\n  tufctl factory create acme --token-file tufd-data/admin-token --out acme.json"
    )]
    Factory {
        #[command(subcommand)]
        command: FactoryCommand,
    },
    /// Offline keys: download, rotate, copy, inspect, back up.
    #[command(after_long_help = "Example:\n  tufctl keys status acme.tgz")]
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// GET any API path and print the response body.
    #[command(
        after_long_help = "Example:\n  tufctl get '/ota/repo/acme/api/v1/user_repo/root.json?production=1' | jq .signed.version"
    )]
    Get {
        /// A path such as /ota/repo/<FACTORY>/api/v1/user_repo/root.json?production=1
        path: String,
    },
    /// Store the token for a Factory on a server (0600, in logins.toml), after checking it.
    #[command(
        long_about = "Store the token for a Factory on a server, after checking it with the \
            server. The token is read from --token-file, else from standard input (a prompt \
            without echo on a terminal), and kept in $XDG_CONFIG_HOME/tufctl/logins.toml (mode \
            0600). Later commands for that server and Factory use it. Without a config file \
            yet, one is written with this server and Factory as the defaults.",
        after_long_help = "Examples:\n  jq -r .token acme.json | tufctl login --api http://127.0.0.1:8080 --factory acme\n  tufctl login --factory acme --token-file owner-token"
    )]
    Login,
    /// Print a shell completion script (bash, zsh or fish).
    #[command(
        after_long_help = "Examples:\n  tufctl completions bash > ~/.local/share/bash-completion/completions/tufctl\n  tufctl completions zsh > \"${fpath[1]}/_tufctl\"\n  tufctl completions fish > ~/.config/fish/completions/tufctl.fish"
    )]
    Completions {
        /// The shell to complete for.
        #[arg(value_enum)]
        shell: ShellArg,
    },
    /// Print the manual page (roff) of tufctl or of one of its commands.
    #[command(
        after_long_help = "Examples:\n  tufctl man | man -l -\n  tufctl man keys status > tufctl-keys-status.1\n  tufctl man --out-dir ~/.local/share/man/man1"
    )]
    Man {
        /// The command whose page to print, e.g. `keys status` (default: tufctl itself).
        command: Vec<String>,
        /// Write the pages of tufctl and of every command into this directory instead.
        #[arg(long, value_name = "DIR", conflicts_with = "command")]
        out_dir: Option<PathBuf>,
    },
    /// CI targets: add, list, show, tag, prune.
    #[command(after_long_help = "Example:\n  tufctl targets list --tag production")]
    Targets {
        #[command(subcommand)]
        command: TargetsCommand,
    },
    /// The Factory's API tokens (owner or admin token).
    #[command(after_long_help = "Example:\n  tufctl tokens list")]
    Tokens {
        #[command(subcommand)]
        command: TokensCommand,
    },
    /// Production releases signed with the offline targets key.
    #[command(after_long_help = "Example:\n  tufctl waves list")]
    Waves {
        #[command(subcommand)]
        command: WavesCommand,
    },
    /// Sign a request file on an offline machine (no server settings, no network): the
    /// request is verified from the root the credentials file trusts, shown, and signed
    /// after confirmation. CREDS.tgz is only read.
    #[command(
        after_long_help = "Example:\n  tufctl sign request.json -k acme.tgz --out response.json --qr response.png"
    )]
    Sign {
        /// The request file written by `keys tuf updates export` or `waves init --export`.
        request: PathBuf,
        /// The credentials file holding the key(s) to sign with (plain or encrypted).
        #[arg(short = 'k', long = "keys", value_name = "CREDS.tgz")]
        creds: PathBuf,
        /// Where to write the signed response.
        #[arg(long, value_name = "RESPONSE.json")]
        out: PathBuf,
        /// Sign without asking (after reviewing the request some other way).
        #[arg(long)]
        yes: bool,
        /// Also write the response as a QR code PNG (the same JSON text; for a wave, its
        /// signatures and the targets' hash: import that with `waves import --request`).
        #[arg(long, value_name = "PNG")]
        qr: Option<PathBuf>,
    },
}

/// The shells `completions` writes for.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ShellArg {
    Bash,
    Zsh,
    Fish,
}

#[derive(Subcommand)]
pub enum FactoryCommand {
    /// Create a Factory (admin token). Its owner and CI tokens and the one-time credentials
    /// URL go into a new 0600 file (--out), never on the screen; with --json the server's
    /// answer is printed instead.
    #[command(
        after_long_help = "Example:\n  tufctl factory create acme --token-file tufd-data/admin-token --out acme.json\n  jq -r .token acme.json | tufctl login --factory acme"
    )]
    Create {
        /// The new Factory's name: lowercase letters, digits and '-'.
        name: String,
        /// Where to write the tokens and the credentials URL (JSON, mode 0600, never
        /// overwritten); default NAME.json. With --json and without --out nothing is written.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
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
    #[command(
        after_long_help = "Example:\n  tufctl keys download \"$(jq -r .credentials_url acme.json)\" acme.tgz --encrypt"
    )]
    Download {
        /// The one-time credentials URL from `factory create` (works once).
        url: String,
        /// Where to save the tarball (must not exist yet).
        #[arg(value_name = "OUT.tgz")]
        out: PathBuf,
        /// Encrypt it with a passphrase before it is written (it never touches the disk in
        /// plain text).
        #[arg(long)]
        encrypt: bool,
    },
    /// Encrypt a credentials file with a passphrase (age format), in place.
    #[command(
        after_long_help = "Example:\n  tufctl keys encrypt acme.tgz --passphrase-file pass.txt"
    )]
    Encrypt {
        /// The credentials file to encrypt.
        #[arg(value_name = "CREDS.tgz")]
        creds: PathBuf,
    },
    /// Decrypt a credentials file in place (it then holds the private keys in plain text).
    #[command(after_long_help = "Example:\n  tufctl keys decrypt acme.tgz")]
    Decrypt {
        /// The encrypted credentials file.
        #[arg(value_name = "CREDS.tgz")]
        creds: PathBuf,
    },
    /// Write the active root private key(s) as a plain text .sec file (0600, never
    /// overwrites) for offline backup.
    #[command(
        after_long_help = "Example:\n  tufctl keys export-root acme.tgz --out root-key.sec && lp root-key.sec && shred -u root-key.sec"
    )]
    ExportRoot {
        /// The credentials file holding the root key.
        #[arg(value_name = "CREDS.tgz")]
        creds: PathBuf,
        /// Output file (default: <key name>.sec in the current directory).
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Replace the root key with a new offline key kept only in CREDS.tgz (or, with
    /// --pkcs11 MODULE --slot S, generated on a hardware token).
    #[command(after_long_help = "Example:\n  tufctl keys rotate-root acme.tgz --key-type ecdsa")]
    RotateRoot {
        /// Type of the new key.
        #[arg(long, value_enum, default_value_t)]
        key_type: KeyTypeArg,
        /// Generate the new key on the hardware token in this slot (slot ID or token label)
        /// of the --pkcs11 module; the file then records only a reference to it.
        #[arg(long, value_name = "SLOT")]
        slot: Option<String>,
        /// Owner recorded in x-key-owners (default $USER@hostname).
        #[arg(long, value_name = "WHO")]
        owner: Option<String>,
        /// Cancel an open root-update transaction left by an interrupted run first.
        #[arg(long)]
        cancel_open: bool,
        /// The credentials file holding the current root key; the new key is saved into it.
        #[arg(value_name = "CREDS.tgz")]
        creds: PathBuf,
    },
    /// Create (or replace) the offline targets key production devices require.
    #[command(after_long_help = "Example:\n  tufctl keys rotate-targets acme.tgz")]
    RotateTargets {
        /// Type of the new key.
        #[arg(long, value_enum, default_value_t)]
        key_type: KeyTypeArg,
        /// Generate the new key on the hardware token in this slot (slot ID or token label)
        /// of the --pkcs11 module.
        #[arg(long, value_name = "SLOT")]
        slot: Option<String>,
        /// Owner recorded in x-key-owners (default $USER@hostname).
        #[arg(long, value_name = "WHO")]
        owner: Option<String>,
        /// Cancel an open root-update transaction left by an interrupted run first.
        #[arg(long)]
        cancel_open: bool,
        /// The credentials file holding the root key; the new targets key is saved into it.
        #[arg(value_name = "CREDS.tgz")]
        creds: PathBuf,
    },
    /// Replace the server's online keys (after a server compromise): tufd generates new
    /// keys for the roles, the root key in CREDS.tgz signs the new roots. Refused while a
    /// wave is in progress.
    #[command(
        after_long_help = "Example:\n  tufctl keys rotate-online acme.tgz --roles snapshot,timestamp"
    )]
    RotateOnline {
        /// The online roles whose keys are replaced (comma-separated).
        #[arg(long, value_delimiter = ',', default_value = "targets,snapshot,timestamp",
              value_parser = ["targets", "snapshot", "timestamp"])]
        roles: Vec<String>,
        /// Type of the new online keys.
        #[arg(long, value_enum, default_value_t)]
        key_type: KeyTypeArg,
        /// Cancel an open root-update transaction left by an interrupted run first.
        #[arg(long)]
        cancel_open: bool,
        /// The credentials file holding the root key.
        #[arg(value_name = "CREDS.tgz")]
        creds: PathBuf,
    },
    /// Write a second tarball holding only the active offline targets key(s).
    #[command(after_long_help = "Example:\n  tufctl keys copy-targets acme.tgz targets-only.tgz")]
    CopyTargets {
        /// The credentials file holding the offline targets key.
        #[arg(value_name = "CREDS.tgz")]
        creds: PathBuf,
        /// The new targets-only file (must not exist yet).
        #[arg(value_name = "TARGETS-ONLY.tgz")]
        out: PathBuf,
    },
    /// Print the Factory's current root.json.
    #[command(
        after_long_help = "Example:\n  tufctl keys show-root --prod | jq .signed.roles.targets"
    )]
    ShowRoot {
        /// The production root instead of the CI root.
        #[arg(long)]
        prod: bool,
    },
    /// Paper backup: split the active root key (and with --include-targets the offline
    /// targets key) into N Shamir shares, any K of which restore it; writes printable HTML,
    /// PNG (the whole sheet: text and QR code) and .txt files per share.
    #[command(
        after_long_help = "Example:\n  tufctl keys backup acme.tgz --shares 5 --threshold 3 --out shares/"
    )]
    Backup {
        /// The credentials file holding the key(s) to back up.
        #[arg(value_name = "CREDS.tgz")]
        creds: PathBuf,
        /// How many shares to write (N).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u8).range(2..=255))]
        shares: u8,
        /// How many shares restore the key (K).
        #[arg(long, value_name = "K", value_parser = clap::value_parser!(u8).range(2..=255))]
        threshold: u8,
        /// Directory for the share files (created; must be empty).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Also back up the offline targets key.
        #[arg(long)]
        include_targets: bool,
    },
    /// Rebuild a key from Shamir shares (share files, typed text files, or scanned QR
    /// payloads) into a credentials file.
    #[command(
        after_long_help = "Example:\n  tufctl keys restore share-1.txt share-3.txt share-4.txt --out restored.tgz --encrypt"
    )]
    Restore {
        /// The shares: files, or QR payload text.
        #[arg(required = true, value_name = "SHARE")]
        shares: Vec<String>,
        /// The credentials file to write (must not exist yet).
        #[arg(long, value_name = "CREDS.tgz")]
        out: PathBuf,
        /// Require the key to be in the Factory's current root (server must be reachable).
        #[arg(long)]
        factory_check: bool,
        /// Write a new file encrypted with a passphrase (age format) instead of plain text.
        #[arg(long)]
        encrypt: bool,
    },
    /// Which keys in the file are active, inactive or missing, and what expires soon.
    #[command(
        long_about = "Which keys in the file are active, inactive or missing, who holds the \
            root keys, and which metadata only offline key holders can renew expires within \
            30 days. With --check the exit code says it: 0 when nothing expires within \
            --within DAYS, 4 when something does (for cron jobs and monitoring).",
        after_long_help = "Examples:\n  tufctl keys status acme.tgz\n  tufctl keys status targets-only.tgz --check --within 45 || mail -s 'renew TUF metadata' ops@example.com"
    )]
    Status {
        /// The credentials file to inspect.
        #[arg(value_name = "CREDS.tgz")]
        creds: PathBuf,
        /// Exit with code 4 when metadata expires within --within DAYS (0 otherwise).
        #[arg(long)]
        check: bool,
        /// The window of --check and of the warnings, in days.
        #[arg(long, value_name = "DAYS", default_value_t = 30,
              value_parser = clap::value_parser!(u32).range(1..=3650))]
        within: u32,
    },
    /// Generate a new root or targets key into CREDS.tgz on the offline machine (no server,
    /// no network) and write its public part to OUT, for `keys tuf updates add-offline-key
    /// --public-key OUT` on the online machine.
    #[command(
        after_long_help = "Example:\n  tufctl keys generate bob.tgz --role root --out bob-root.json"
    )]
    Generate {
        /// The credentials file the new key goes into (created when missing).
        #[arg(value_name = "CREDS.tgz")]
        creds: PathBuf,
        /// The role the key is for.
        #[arg(long, value_parser = ["root", "targets"])]
        role: String,
        /// Type of the new key.
        #[arg(long, value_enum, default_value_t)]
        key_type: KeyTypeArg,
        /// Generate the key on the hardware token in this slot (slot ID or token label) of
        /// the --pkcs11 module.
        #[arg(long, value_name = "SLOT")]
        slot: Option<String>,
        /// Who holds the key (shown to every signer); default USER@hostname.
        #[arg(long, value_name = "WHO")]
        owner: Option<String>,
        /// Where to write the public-key file (never overwritten).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Renew the roots before they expire: version + 1 and a new expiry, nothing else
    /// changed; signed with the root key(s) in CREDS.tgz and applied, or exported for
    /// signing on an offline machine.
    #[command(
        after_long_help = "Examples:\n  tufctl keys resign-root acme.tgz --expires-days 365\n  tufctl keys resign-root acme.tgz --export request.json"
    )]
    ResignRoot {
        /// The credentials file holding the root key(s).
        #[arg(value_name = "CREDS.tgz")]
        creds: PathBuf,
        /// Days until the renewed roots expire.
        #[arg(long, value_name = "DAYS", default_value_t = 365,
              value_parser = clap::value_parser!(u32).range(1..=1826))]
        expires_days: u32,
        /// Stage the renewal and write a signing request instead of signing here.
        #[arg(long, value_name = "REQUEST.json")]
        export: Option<PathBuf>,
        /// Cancel an open root-update transaction first.
        #[arg(long)]
        cancel_open: bool,
    },
    /// Root-update transactions, step by step (threshold roots, several key holders).
    #[command(after_long_help = "Example:\n  tufctl keys tuf updates review")]
    Tuf {
        #[command(subcommand)]
        command: TufCommand,
    },
}

#[derive(Subcommand)]
pub enum TufCommand {
    /// Root-update transactions.
    #[command(
        after_long_help = "Example:\n  tufctl keys tuf updates init -m \"add Bob's root key\""
    )]
    Updates {
        #[command(subcommand)]
        command: UpdatesCommand,
    },
}

#[derive(Subcommand)]
pub enum UpdatesCommand {
    /// Open a transaction: the current roots with version + 1.
    #[command(
        after_long_help = "Example:\n  tufctl keys tuf updates init -m \"add Bob's root key\""
    )]
    Init {
        /// Why: shown to every key holder who signs.
        #[arg(short, long, value_name = "TEXT")]
        message: String,
    },
    /// Show staged versus current roots and the signatures still missing.
    #[command(after_long_help = "Example:\n  tufctl keys tuf updates review")]
    Review,
    /// Sign the staged roots (and production targets) with the keys in a credentials file.
    #[command(after_long_help = "Example:\n  tufctl keys tuf updates sign -k alice.tgz")]
    Sign {
        /// The credentials file holding this holder's key(s) (plain or encrypted).
        #[arg(short = 'k', long = "keys", value_name = "CREDS.tgz")]
        creds: PathBuf,
    },
    /// Commit the transaction (the server runs every check).
    #[command(after_long_help = "Example:\n  tufctl keys tuf updates apply")]
    Apply,
    /// Abort the transaction.
    #[command(after_long_help = "Example:\n  tufctl keys tuf updates cancel")]
    Cancel,
    /// Write the open transaction as a signing request for `tufctl sign` on an offline machine.
    #[command(after_long_help = "Example:\n  tufctl keys tuf updates export request.json")]
    Export {
        /// Where to write the request (never overwritten).
        #[arg(value_name = "REQUEST.json")]
        out: PathBuf,
    },
    /// Add the signatures of a signed response (a file, `-` for standard input, or the
    /// scanned QR payload text).
    #[command(after_long_help = "Example:\n  tufctl keys tuf updates import response.json")]
    Import {
        /// The response file, `-`, or the QR payload text.
        #[arg(value_name = "RESPONSE")]
        response: String,
    },
    /// Change a role's threshold in the staged roots (targets: production root only).
    #[command(after_long_help = "Example:\n  tufctl keys tuf updates set-threshold --role root 2")]
    SetThreshold {
        /// The role: root, targets, snapshot or timestamp.
        #[arg(long)]
        role: String,
        /// The new threshold (at least 1, at most the role's key count).
        #[arg(value_name = "N")]
        threshold: u64,
    },
    /// Remove a key from the staged roots (a lost or retired key holder's): from every role
    /// that lists it, or only from --role, and from `keys` once no role uses it. KEYID may be
    /// a unique prefix of at least 8 hex digits. The current root's threshold of the other
    /// holders signs the change; the removed key's holder is not needed.
    #[command(after_long_help = "Example:\n  tufctl keys tuf updates remove-key 3f2a9c01")]
    RemoveKey {
        /// The key ID, or a unique prefix of at least 8 hex digits.
        keyid: String,
        /// Remove it from this role only.
        #[arg(long, value_parser = ["root", "targets"])]
        role: Option<String>,
    },
    /// Add a new offline key to the root or targets role of the staged roots.
    #[command(
        after_long_help = "Examples:\n  tufctl keys tuf updates add-offline-key --role root -k bob.tgz\n  tufctl keys tuf updates add-offline-key --role root --public-key bob-root.json"
    )]
    AddOfflineKey {
        /// The role: root or targets.
        #[arg(long)]
        role: String,
        /// Type of the new key.
        #[arg(long, value_enum, default_value_t)]
        key_type: KeyTypeArg,
        /// Generate the new key on the hardware token in this slot (slot ID or token label)
        /// of the --pkcs11 module.
        #[arg(long, value_name = "SLOT")]
        slot: Option<String>,
        /// Who holds the key (shown to every signer); default USER@hostname.
        #[arg(long, value_name = "WHO")]
        owner: Option<String>,
        /// The credentials file the new key is generated into (created when missing).
        #[arg(
            short = 'k',
            long = "keys",
            value_name = "CREDS.tgz",
            required_unless_present = "public_key"
        )]
        creds: Option<PathBuf>,
        /// Add a key generated on an offline machine by `tufctl keys generate` (its
        /// public-key file) instead of generating one here.
        #[arg(long, value_name = "FILE", conflicts_with_all = ["creds", "slot"])]
        public_key: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
pub enum TargetsCommand {
    /// Add a target to the CI targets (ci or owner token).
    #[command(
        after_long_help = "Examples:\n  tufctl targets add --token-file ci-token --name app --version 42 --hardware-id board-a --file app-42.img\n  tufctl targets add --name app --version 43 --hardware-id board-a --sha256 HASH --length 1048576"
    )]
    Add(AddArgs),
    /// List the CI (or production) targets, newest version last, filtered.
    #[command(
        after_long_help = "Examples:\n  tufctl targets list --hardware-id board-a --tag production\n  tufctl targets list --prod\n  tufctl --json targets list --name app | jq -r '.[].target'"
    )]
    List {
        #[command(flatten)]
        filter: TargetFilter,
        /// The production targets (published by Waves) instead of the CI targets.
        #[arg(long)]
        prod: bool,
    },
    /// Show targets in full: hashes, size, hardware IDs, tags, custom fields, and whether
    /// production lists them.
    #[command(
        after_long_help = "Examples:\n  tufctl targets show app-42\n  tufctl targets show 42        # every target of version 42"
    )]
    Show {
        /// Target paths (`NAME-VERSION`), or versions (every target of that version).
        #[arg(required = true, value_name = "TARGET")]
        targets: Vec<String>,
        /// Look in the production targets instead of the CI targets.
        #[arg(long)]
        prod: bool,
    },
    /// Set, add or remove the tags of CI targets (owner token). A Wave takes the targets of
    /// one version that carry its tag.
    #[command(
        after_long_help = "Examples:\n  tufctl targets tag app-42 --tag production --append\n  tufctl targets tag app-41 app-42 --tag beta --remove\n  tufctl targets tag app-42 --tag main,production"
    )]
    Tag {
        /// The CI targets to tag (`NAME-VERSION`).
        #[arg(required = true, value_name = "TARGET")]
        targets: Vec<String>,
        /// The tag(s): repeat the option or separate with commas.
        #[arg(
            long = "tag",
            value_name = "TAG",
            value_delimiter = ',',
            required = true
        )]
        tags: Vec<String>,
        /// Add the tags to those the target has, instead of replacing them.
        #[arg(long, conflicts_with = "remove")]
        append: bool,
        /// Remove the tags from those the target has.
        #[arg(long)]
        remove: bool,
    },
    /// Remove CI targets (owner token): by name, by selection (name, version, age, hardware
    /// ID, tag) and keeping the newest N. Shows what goes first; production targets are not
    /// touched (they change only through Waves).
    #[command(
        after_long_help = "Examples:\n  tufctl targets prune app-40 app-41\n  tufctl targets prune --name app --keep-last 5 --dry-run\n  tufctl targets prune --tag ci --older-than 90 --yes"
    )]
    Prune(PruneArgs),
}

/// Which targets a listing or a prune takes; every given filter must match.
#[derive(Args, Clone, Debug, Default)]
pub struct TargetFilter {
    /// Only targets of this name (the `name` they were added with).
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Only targets of this version.
    #[arg(long, value_name = "VERSION")]
    pub version: Option<String>,
    /// Only targets for this hardware ID.
    #[arg(long, value_name = "HW")]
    pub hardware_id: Option<String>,
    /// Only targets carrying this tag.
    #[arg(long, value_name = "TAG")]
    pub tag: Option<String>,
}

/// `targets prune`.
#[derive(Args, Clone, Debug)]
#[command(group(clap::ArgGroup::new("selection").multiple(true).required(true)
    .args(["targets", "name", "version", "hardware_id", "tag", "older_than", "keep_last"])))]
pub struct PruneArgs {
    /// Target paths (`NAME-VERSION`) to remove.
    #[arg(value_name = "TARGET")]
    pub targets: Vec<String>,
    #[command(flatten)]
    pub filter: TargetFilter,
    /// Only targets the server signed more than DAYS days ago (targets without a recorded
    /// time are kept).
    #[arg(long, value_name = "DAYS")]
    pub older_than: Option<u32>,
    /// Keep the newest N targets of each name among those selected (newest: highest
    /// version, numbers compared as numbers, then the latest added).
    #[arg(long, value_name = "N")]
    pub keep_last: Option<usize>,
    /// Show what would be removed, and remove nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Remove without asking (needed when standard input is not a terminal).
    #[arg(long)]
    pub yes: bool,
}

#[derive(Subcommand)]
pub enum TokensCommand {
    /// List the Factory's tokens: ID, scope, creation time (never the secret).
    #[command(after_long_help = "Example:\n  tufctl tokens list")]
    List,
    /// Create a token; its secret is printed once.
    #[command(
        after_long_help = "Example:\n  tufctl tokens create read > read-token && chmod 600 read-token"
    )]
    Create {
        /// The new token's scope.
        #[arg(value_parser = ["owner", "ci", "read"])]
        scope: String,
    },
    /// Revoke one token by ID, or every token of the Factory with --all.
    #[command(
        after_long_help = "Examples:\n  tufctl tokens revoke 4f2a9c01d3e5\n  tufctl tokens revoke --all --keep-current"
    )]
    Revoke {
        /// The token's ID (see `tufctl tokens list`).
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
    #[command(
        after_long_help = "Examples:\n  tufctl waves init -k targets-only.tgz wave-42 42 production\n  tufctl waves init wave-42 42 production --export request.json"
    )]
    Init {
        /// The targets-only credentials file holding the offline targets key.
        #[arg(
            short = 'k',
            long = "keys",
            value_name = "TARGETS-ONLY.tgz",
            required_unless_present = "export"
        )]
        creds: Option<PathBuf>,
        /// The new wave's name.
        wave: String,
        /// The build version whose CI targets go to production.
        version: String,
        /// The tag those CI targets carry (e.g. production).
        tag: String,
        /// Days until the production targets expire; production devices stop updating then,
        /// unless a newer Wave replaces them (`keys status` warns 30 days ahead).
        #[arg(long, value_name = "DAYS", default_value_t = 365,
              value_parser = clap::value_parser!(u32).range(1..=3650))]
        expires_days: u32,
        /// Write the proposed targets as a signing request for `tufctl sign` instead of
        /// signing here (no private key needed).
        #[arg(long, value_name = "REQUEST.json")]
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
    #[command(after_long_help = "Example:\n  tufctl waves import response.json")]
    Import {
        /// The response file, `-`, or the QR payload text.
        #[arg(value_name = "RESPONSE")]
        response: String,
        /// The request the response answers: needed for a response from a QR code, which
        /// names the wave's targets by hash only.
        #[arg(long, value_name = "REQUEST.json")]
        request: Option<PathBuf>,
    },
    /// Re-sign the production targets of the wave in production with a new version and
    /// expiry, nothing else changed.
    #[command(
        after_long_help = "Example:\n  tufctl waves resign -k targets-only.tgz wave-42 --expires-days 365"
    )]
    Resign {
        /// The targets-only credentials file holding the offline targets key.
        #[arg(short = 'k', long = "keys", value_name = "TARGETS-ONLY.tgz")]
        creds: PathBuf,
        /// The wave in production.
        wave: String,
        /// Days until the renewed production targets expire.
        #[arg(long, value_name = "DAYS", default_value_t = 365,
              value_parser = clap::value_parser!(u32).range(1..=3650))]
        expires_days: u32,
    },
    /// Publish the wave as the production targets.
    #[command(after_long_help = "Example:\n  tufctl waves complete wave-42")]
    Complete {
        /// The active wave to publish.
        wave: String,
    },
    /// Abort the wave.
    #[command(after_long_help = "Example:\n  tufctl waves cancel wave-42")]
    Cancel {
        /// The active wave to cancel.
        wave: String,
    },
    /// List waves.
    #[command(after_long_help = "Example:\n  tufctl waves list")]
    List,
    /// Show one wave: its status, expiry and production targets (those it adds marked),
    /// filtered by hardware ID and tag.
    #[command(
        after_long_help = "Examples:\n  tufctl waves show wave-42\n  tufctl waves show wave-42 --hardware-id board-a"
    )]
    Show {
        /// The wave's name.
        wave: String,
        /// Only targets for this hardware ID.
        #[arg(long, value_name = "HW")]
        hardware_id: Option<String>,
        /// Only targets carrying this tag.
        #[arg(long, value_name = "TAG")]
        tag: Option<String>,
    },
}

/// `targets add`.
#[derive(Args)]
pub struct AddArgs {
    /// The target's name; its TUF path is NAME-VERSION.
    #[arg(long)]
    pub name: String,
    /// The build version.
    #[arg(long)]
    pub version: String,
    /// Hardware ID the target is for (repeat for several).
    #[arg(long = "hardware-id", value_name = "HW", required = true)]
    pub hardware_ids: Vec<String>,
    /// Tag (repeat for several); a Wave takes the targets of its version with its tag.
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
    /// Upload this artifact (its hash and length are computed by the server).
    #[arg(long, value_name = "PATH", conflicts_with_all = ["sha256", "length"])]
    pub file: Option<PathBuf>,
    /// SHA-256 of an artifact stored elsewhere (64 hex digits); needs --length.
    #[arg(long, value_name = "HEX", requires = "length")]
    pub sha256: Option<String>,
    /// Length in bytes of an artifact stored elsewhere; needs --sha256.
    #[arg(long, value_name = "BYTES", requires = "sha256")]
    pub length: Option<u64>,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    /// Every command has an about text and an example in its long help; every argument and
    /// option has help text. A command or option added without them fails here.
    #[test]
    fn every_command_and_argument_is_documented() {
        let mut missing = Vec::new();
        walk(&Cli::command(), "tufctl", &mut missing);
        assert!(missing.is_empty(), "undocumented:\n{}", missing.join("\n"));
    }

    fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
        if cmd
            .get_about()
            .is_none_or(|a| a.to_string().trim().is_empty())
        {
            missing.push(format!("{path}: no about text"));
        }
        let example = cmd
            .get_after_long_help()
            .is_some_and(|h| h.to_string().contains("Example"));
        if !example {
            missing.push(format!("{path}: no example in the long help"));
        }
        for arg in cmd.get_arguments() {
            let builtin = matches!(arg.get_id().as_str(), "help" | "version");
            if !builtin
                && arg
                    .get_help()
                    .is_none_or(|h| h.to_string().trim().is_empty())
            {
                missing.push(format!("{path}: argument {} has no help", arg.get_id()));
            }
        }
        for sub in cmd.get_subcommands() {
            walk(sub, &format!("{path} {}", sub.get_name()), missing);
        }
    }

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }
}
