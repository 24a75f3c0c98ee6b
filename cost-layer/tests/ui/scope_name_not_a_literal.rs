use cost_layer::session;

// A session's `name` is its span's name, which must be a literal (its id may be an expression).
#[session(id = id, name = id)]
fn handle(id: &str) -> usize {
    id.len()
}

fn main() {
    let _ = handle("s-1");
}
