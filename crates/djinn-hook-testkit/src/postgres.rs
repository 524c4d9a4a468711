//! Throw-away PostgreSQL databases for tests.

/// The variable naming the PostgreSQL server of the tests, e.g.
/// `postgres://postgres@127.0.0.1:5432/test`.
pub const POSTGRES_URL: &str = "DJINN_TEST_POSTGRES_URL";

/// A database made for one test on a server, dropped (with any connection still open to it)
/// when the value is dropped, even if the test failed.
#[derive(Debug)]
pub struct ScratchDatabase {
    server: String,
    name: String,
    /// The URL of this database.
    pub url: String,
}

impl ScratchDatabase {
    /// Creates a database with a name of its own on `server` (a `postgres://` URL).
    pub fn create(server: &str) -> ScratchDatabase {
        let name = format!(
            "djinn_test_{}_{:016x}",
            std::process::id(),
            fastrand::u64(..)
        );
        admin(server)
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap_or_else(|e| panic!("cannot create test database {name}: {e}"));
        ScratchDatabase {
            server: server.to_owned(),
            url: with_database(server, &name),
            name,
        }
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Terminates every connection to the database and drops it, now: a database server gone
    /// mid-run, as far as its clients can tell.
    pub fn drop_now(&self) {
        let mut admin = admin(&self.server);
        admin
            .execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE datname = $1 AND pid <> pg_backend_pid()",
                &[&self.name],
            )
            .unwrap_or_else(|e| panic!("cannot end the connections to {}: {e}", self.name));
        admin
            .batch_execute(&format!("DROP DATABASE {} WITH (FORCE)", self.name))
            .unwrap_or_else(|e| panic!("cannot drop test database {}: {e}", self.name));
    }
}

impl Drop for ScratchDatabase {
    fn drop(&mut self) {
        let dropped = admin(&self.server).batch_execute(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ));
        if let Err(e) = dropped {
            eprintln!("could not drop test database {}: {e}", self.name);
        }
    }
}

/// A connection to the server's own database, to create and drop others.
fn admin(server: &str) -> postgres::Client {
    postgres::Client::connect(server, postgres::NoTls)
        .unwrap_or_else(|e| panic!("cannot connect to {POSTGRES_URL}: {e}"))
}

/// `server` (a `postgres://` URL) with its database replaced by `name`.
pub fn with_database(server: &str, name: &str) -> String {
    let (base, query) = server.split_once('?').unwrap_or((server, ""));
    let authority_start = base.find("://").expect("a postgres:// URL") + 3;
    let base = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    if query.is_empty() {
        format!("{base}/{name}")
    } else {
        format!("{base}/{name}?{query}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_of_a_url_is_replaced() {
        let check = |server, expected: &str| assert_eq!(with_database(server, "x"), expected);
        check("postgres://u@h:5432/test", "postgres://u@h:5432/x");
        check("postgres://u@h:5432", "postgres://u@h:5432/x");
        check(
            "postgres://u@h/test?sslmode=disable",
            "postgres://u@h/x?sslmode=disable",
        );
    }
}
