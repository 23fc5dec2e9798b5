// `sqlx::migrate!` embeds the migrations when tufd is compiled; without this, adding a
// migration file would not rebuild tufd and the new migration would be missing from it.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
