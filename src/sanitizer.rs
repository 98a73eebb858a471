//! Lets `cargo test --all-features` link without AddressSanitizer.
//!
//! The `sanitizer` feature makes corosensei tell ASan about every stack
//! switch, through three functions of the ASan runtime. A build with
//! `-Zsanitizer=address` links that runtime; any other build (for example the
//! plain `cargo test --all-features`) has no definitions for them and would
//! fail to link. There, with no sanitizer to inform, they have nothing to do,
//! so cogen provides empty ones.

// A sanitized build links the real functions.
#![cfg(not(sanitize = "address"))]

use std::ffi::c_void;

/// No-op stand-in for ASan's `__sanitizer_start_switch_fiber`.
///
/// # Safety
/// Called by corosensei with valid out-pointers; it writes nothing but the
/// "no fake stack" answer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __sanitizer_start_switch_fiber(
    fake_stack_save: *mut *mut c_void,
    _bottom: *const c_void,
    _size: usize,
) {
    if !fake_stack_save.is_null() {
        // SAFETY: corosensei passes a valid pointer to a local.
        unsafe { *fake_stack_save = std::ptr::null_mut() };
    }
}

/// No-op stand-in for ASan's `__sanitizer_finish_switch_fiber`.
///
/// # Safety
/// Called by corosensei with valid (or null) out-pointers.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __sanitizer_finish_switch_fiber(
    _fake_stack_save: *mut c_void,
    bottom_old: *mut *const c_void,
    size_old: *mut usize,
) {
    // SAFETY: corosensei passes valid pointers to locals, or null.
    unsafe {
        if !bottom_old.is_null() {
            *bottom_old = std::ptr::null();
        }
        if !size_old.is_null() {
            *size_old = 0;
        }
    }
}

/// No-op stand-in for ASan's `__asan_unpoison_memory_region`.
///
/// # Safety
/// Always safe: it does nothing.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __asan_unpoison_memory_region(_addr: *const c_void, _size: usize) {}
