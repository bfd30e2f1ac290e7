//! The probe's only `unsafe`: the declaration of a symbol that no object
//! file defines. The panic handler calls it, so the final link succeeds
//! only if the optimizer removed every path to the panic handler.

// SAFETY: the function is never defined, so it can never actually be
// called: a program that references it fails to link. Declaring it `safe`
// is therefore sound — there is no call to have preconditions for.
unsafe extern "C" {
    /// Undefined on purpose (see the module docs).
    pub safe fn xen_no_panic_probe_panic_reachable() -> !;
}
