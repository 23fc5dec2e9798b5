//! Reading a test server's store directly, as someone with a copy of it would: `sqlite3` on
//! the data directory's file, `psql` on the PostgreSQL database.

use std::process::Command;

use super::Server;

/// Rows of `sql` on the server's store, columns joined by `|`.
pub fn query(server: &Server, sql: &str) -> Vec<String> {
    let out = match &server.db {
        Some((url, _)) => Command::new("psql")
            .arg(url)
            .args(["-At", "-v", "ON_ERROR_STOP=1", "-c", sql])
            .output(),
        None => Command::new("sqlite3")
            .arg(server.dir.path().join("data/tufd.sqlite"))
            .arg(sql)
            .output(),
    }
    .unwrap_or_else(|e| panic!("cannot run the database client (sqlite3 or psql): {e}"));
    assert!(
        out.status.success(),
        "{sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// `column` as hex in the store's SQL dialect.
pub fn hex_of(server: &Server, column: &str) -> String {
    match server.db {
        Some(_) => format!("encode({column}, 'hex')"),
        None => format!("hex({column})"),
    }
}
