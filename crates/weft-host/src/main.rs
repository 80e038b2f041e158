fn main() {
    let engine = wasmtime::Engine::default();
    let _ = wasmtime::component::Linker::<()>::new(&engine);
}
