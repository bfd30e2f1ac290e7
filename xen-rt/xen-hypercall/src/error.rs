//! Typed hypercall errors.
//!
//! Hypercalls return a signed machine word in `x0`: non-negative on success,
//! `-errno` on failure, with the errno values of
//! `xen/include/public/errno.h` (which follow Linux's numbering). Grant-table
//! operations additionally report a per-operation `GNTST_*` status
//! (`xen/include/public/grant_table.h`), modelled by [`GrantStatus`].

use core::fmt;

/// Result of a hypercall operation.
pub type Result<T> = core::result::Result<T, Error>;

/// Xen errno values (`XEN_E*` in `xen/include/public/errno.h`).
pub mod errno {
    /// `XEN_EPERM` = 1.
    pub const EPERM: i64 = 1;
    /// `XEN_ENOENT` = 2.
    pub const ENOENT: i64 = 2;
    /// `XEN_ESRCH` = 3.
    pub const ESRCH: i64 = 3;
    /// `XEN_EINTR` = 4.
    pub const EINTR: i64 = 4;
    /// `XEN_EIO` = 5.
    pub const EIO: i64 = 5;
    /// `XEN_ENXIO` = 6.
    pub const ENXIO: i64 = 6;
    /// `XEN_E2BIG` = 7.
    pub const E2BIG: i64 = 7;
    /// `XEN_ENOEXEC` = 8.
    pub const ENOEXEC: i64 = 8;
    /// `XEN_EBADF` = 9.
    pub const EBADF: i64 = 9;
    /// `XEN_ECHILD` = 10.
    pub const ECHILD: i64 = 10;
    /// `XEN_EAGAIN` = 11.
    pub const EAGAIN: i64 = 11;
    /// `XEN_ENOMEM` = 12.
    pub const ENOMEM: i64 = 12;
    /// `XEN_EACCES` = 13.
    pub const EACCES: i64 = 13;
    /// `XEN_EFAULT` = 14.
    pub const EFAULT: i64 = 14;
    /// `XEN_EBUSY` = 16.
    pub const EBUSY: i64 = 16;
    /// `XEN_EEXIST` = 17.
    pub const EEXIST: i64 = 17;
    /// `XEN_EXDEV` = 18.
    pub const EXDEV: i64 = 18;
    /// `XEN_ENODEV` = 19.
    pub const ENODEV: i64 = 19;
    /// `XEN_ENOTDIR` = 20.
    pub const ENOTDIR: i64 = 20;
    /// `XEN_EISDIR` = 21.
    pub const EISDIR: i64 = 21;
    /// `XEN_EINVAL` = 22.
    pub const EINVAL: i64 = 22;
    /// `XEN_ENFILE` = 23.
    pub const ENFILE: i64 = 23;
    /// `XEN_EMFILE` = 24.
    pub const EMFILE: i64 = 24;
    /// `XEN_ENOSPC` = 28.
    pub const ENOSPC: i64 = 28;
    /// `XEN_EROFS` = 30.
    pub const EROFS: i64 = 30;
    /// `XEN_EMLINK` = 31.
    pub const EMLINK: i64 = 31;
    /// `XEN_EDOM` = 33.
    pub const EDOM: i64 = 33;
    /// `XEN_ERANGE` = 34.
    pub const ERANGE: i64 = 34;
    /// `XEN_EDEADLK` = 35.
    pub const EDEADLK: i64 = 35;
    /// `XEN_ENAMETOOLONG` = 36.
    pub const ENAMETOOLONG: i64 = 36;
    /// `XEN_ENOLCK` = 37.
    pub const ENOLCK: i64 = 37;
    /// `XEN_ENOSYS` = 38.
    pub const ENOSYS: i64 = 38;
    /// `XEN_ENOTEMPTY` = 39.
    pub const ENOTEMPTY: i64 = 39;
    /// `XEN_ENODATA` = 61.
    pub const ENODATA: i64 = 61;
    /// `XEN_ETIME` = 62.
    pub const ETIME: i64 = 62;
    /// `XEN_EBADMSG` = 74.
    pub const EBADMSG: i64 = 74;
    /// `XEN_EOVERFLOW` = 75.
    pub const EOVERFLOW: i64 = 75;
    /// `XEN_EILSEQ` = 84.
    pub const EILSEQ: i64 = 84;
    /// `XEN_ERESTART` = 85.
    pub const ERESTART: i64 = 85;
    /// `XEN_ENOTSOCK` = 88.
    pub const ENOTSOCK: i64 = 88;
    /// `XEN_EMSGSIZE` = 90.
    pub const EMSGSIZE: i64 = 90;
    /// `XEN_EOPNOTSUPP` = 95.
    pub const EOPNOTSUPP: i64 = 95;
    /// `XEN_EADDRINUSE` = 98.
    pub const EADDRINUSE: i64 = 98;
    /// `XEN_EADDRNOTAVAIL` = 99.
    pub const EADDRNOTAVAIL: i64 = 99;
    /// `XEN_ENOBUFS` = 105.
    pub const ENOBUFS: i64 = 105;
    /// `XEN_EISCONN` = 106.
    pub const EISCONN: i64 = 106;
    /// `XEN_ENOTCONN` = 107.
    pub const ENOTCONN: i64 = 107;
    /// `XEN_ETIMEDOUT` = 110.
    pub const ETIMEDOUT: i64 = 110;
    /// `XEN_ECONNREFUSED` = 111.
    pub const ECONNREFUSED: i64 = 111;
    /// `XEN_EWOULDBLOCK`: alias of [`EAGAIN`].
    pub const EWOULDBLOCK: i64 = EAGAIN;
    /// `XEN_EDEADLOCK`: alias of [`EDEADLK`].
    pub const EDEADLOCK: i64 = EDEADLK;
}

/// An error returned by a hypercall.
///
/// One variant per errno value of `xen/include/public/errno.h` (aliases
/// `EWOULDBLOCK` = [`Error::EAGAIN`] and `EDEADLOCK` = [`Error::EDEADLK`]),
/// [`Error::Grant`] for a failed grant-table operation whose hypercall itself
/// succeeded, and [`Error::Unknown`] for any other negative return value.
#[allow(clippy::upper_case_acronyms)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Error {
    /// `EPERM` (1): Operation not permitted.
    EPERM,
    /// `ENOENT` (2): No such file or directory.
    ENOENT,
    /// `ESRCH` (3): No such process.
    ESRCH,
    /// `EINTR` (4): Interrupted system call.
    EINTR,
    /// `EIO` (5): I/O error.
    EIO,
    /// `ENXIO` (6): No such device or address.
    ENXIO,
    /// `E2BIG` (7): Arg list too long.
    E2BIG,
    /// `ENOEXEC` (8): Exec format error.
    ENOEXEC,
    /// `EBADF` (9): Bad file number.
    EBADF,
    /// `ECHILD` (10): No child processes.
    ECHILD,
    /// `EAGAIN` (11): Try again.
    EAGAIN,
    /// `ENOMEM` (12): Out of memory.
    ENOMEM,
    /// `EACCES` (13): Permission denied.
    EACCES,
    /// `EFAULT` (14): Bad address.
    EFAULT,
    /// `EBUSY` (16): Device or resource busy.
    EBUSY,
    /// `EEXIST` (17): File exists.
    EEXIST,
    /// `EXDEV` (18): Cross-device link.
    EXDEV,
    /// `ENODEV` (19): No such device.
    ENODEV,
    /// `ENOTDIR` (20): Not a directory.
    ENOTDIR,
    /// `EISDIR` (21): Is a directory.
    EISDIR,
    /// `EINVAL` (22): Invalid argument.
    EINVAL,
    /// `ENFILE` (23): File table overflow.
    ENFILE,
    /// `EMFILE` (24): Too many open files.
    EMFILE,
    /// `ENOSPC` (28): No space left on device.
    ENOSPC,
    /// `EROFS` (30): Read-only file system.
    EROFS,
    /// `EMLINK` (31): Too many links.
    EMLINK,
    /// `EDOM` (33): Math argument out of domain of func.
    EDOM,
    /// `ERANGE` (34): Math result not representable.
    ERANGE,
    /// `EDEADLK` (35): Resource deadlock would occur.
    EDEADLK,
    /// `ENAMETOOLONG` (36): File name too long.
    ENAMETOOLONG,
    /// `ENOLCK` (37): No record locks available.
    ENOLCK,
    /// `ENOSYS` (38): Function not implemented.
    ENOSYS,
    /// `ENOTEMPTY` (39): Directory not empty.
    ENOTEMPTY,
    /// `ENODATA` (61): No data available.
    ENODATA,
    /// `ETIME` (62): Timer expired.
    ETIME,
    /// `EBADMSG` (74): Not a data message.
    EBADMSG,
    /// `EOVERFLOW` (75): Value too large for defined data type.
    EOVERFLOW,
    /// `EILSEQ` (84): Illegal byte sequence.
    EILSEQ,
    /// `ERESTART` (85): Interrupted system call should be restarted.
    ERESTART,
    /// `ENOTSOCK` (88): Socket operation on non-socket.
    ENOTSOCK,
    /// `EMSGSIZE` (90): Message too large.
    EMSGSIZE,
    /// `EOPNOTSUPP` (95): Operation not supported on transport endpoint.
    EOPNOTSUPP,
    /// `EADDRINUSE` (98): Address already in use.
    EADDRINUSE,
    /// `EADDRNOTAVAIL` (99): Cannot assign requested address.
    EADDRNOTAVAIL,
    /// `ENOBUFS` (105): No buffer space available.
    ENOBUFS,
    /// `EISCONN` (106): Transport endpoint is already connected.
    EISCONN,
    /// `ENOTCONN` (107): Transport endpoint is not connected.
    ENOTCONN,
    /// `ETIMEDOUT` (110): Connection timed out.
    ETIMEDOUT,
    /// `ECONNREFUSED` (111): Connection refused.
    ECONNREFUSED,
    /// A grant-table operation failed with this (non-`Okay`) status.
    Grant(GrantStatus),
    /// A negative return value that is not a known Xen errno. Holds the errno
    /// number, i.e. the negated return value (`-ret`, wrapping).
    Unknown(i64),
}

impl Error {
    /// Converts a raw hypercall return value: non-negative values are
    /// `Ok(ret as u64)`, negative ones `Err` with the matching errno.
    #[inline]
    pub const fn from_ret(ret: i64) -> core::result::Result<u64, Error> {
        if ret >= 0 {
            Ok(ret as u64)
        } else {
            Err(Error::from_errno(ret.wrapping_neg()))
        }
    }

    /// The error for a (positive) errno number. Numbers that are not Xen
    /// errno values give [`Error::Unknown`].
    pub const fn from_errno(errno: i64) -> Error {
        match errno {
            errno::EPERM => Error::EPERM,
            errno::ENOENT => Error::ENOENT,
            errno::ESRCH => Error::ESRCH,
            errno::EINTR => Error::EINTR,
            errno::EIO => Error::EIO,
            errno::ENXIO => Error::ENXIO,
            errno::E2BIG => Error::E2BIG,
            errno::ENOEXEC => Error::ENOEXEC,
            errno::EBADF => Error::EBADF,
            errno::ECHILD => Error::ECHILD,
            errno::EAGAIN => Error::EAGAIN,
            errno::ENOMEM => Error::ENOMEM,
            errno::EACCES => Error::EACCES,
            errno::EFAULT => Error::EFAULT,
            errno::EBUSY => Error::EBUSY,
            errno::EEXIST => Error::EEXIST,
            errno::EXDEV => Error::EXDEV,
            errno::ENODEV => Error::ENODEV,
            errno::ENOTDIR => Error::ENOTDIR,
            errno::EISDIR => Error::EISDIR,
            errno::EINVAL => Error::EINVAL,
            errno::ENFILE => Error::ENFILE,
            errno::EMFILE => Error::EMFILE,
            errno::ENOSPC => Error::ENOSPC,
            errno::EROFS => Error::EROFS,
            errno::EMLINK => Error::EMLINK,
            errno::EDOM => Error::EDOM,
            errno::ERANGE => Error::ERANGE,
            errno::EDEADLK => Error::EDEADLK,
            errno::ENAMETOOLONG => Error::ENAMETOOLONG,
            errno::ENOLCK => Error::ENOLCK,
            errno::ENOSYS => Error::ENOSYS,
            errno::ENOTEMPTY => Error::ENOTEMPTY,
            errno::ENODATA => Error::ENODATA,
            errno::ETIME => Error::ETIME,
            errno::EBADMSG => Error::EBADMSG,
            errno::EOVERFLOW => Error::EOVERFLOW,
            errno::EILSEQ => Error::EILSEQ,
            errno::ERESTART => Error::ERESTART,
            errno::ENOTSOCK => Error::ENOTSOCK,
            errno::EMSGSIZE => Error::EMSGSIZE,
            errno::EOPNOTSUPP => Error::EOPNOTSUPP,
            errno::EADDRINUSE => Error::EADDRINUSE,
            errno::EADDRNOTAVAIL => Error::EADDRNOTAVAIL,
            errno::ENOBUFS => Error::ENOBUFS,
            errno::EISCONN => Error::EISCONN,
            errno::ENOTCONN => Error::ENOTCONN,
            errno::ETIMEDOUT => Error::ETIMEDOUT,
            errno::ECONNREFUSED => Error::ECONNREFUSED,
            other => Error::Unknown(other),
        }
    }

    /// The (positive) errno number of this error, or `None` for
    /// [`Error::Grant`].
    pub const fn errno(&self) -> Option<i64> {
        Some(match *self {
            Error::EPERM => errno::EPERM,
            Error::ENOENT => errno::ENOENT,
            Error::ESRCH => errno::ESRCH,
            Error::EINTR => errno::EINTR,
            Error::EIO => errno::EIO,
            Error::ENXIO => errno::ENXIO,
            Error::E2BIG => errno::E2BIG,
            Error::ENOEXEC => errno::ENOEXEC,
            Error::EBADF => errno::EBADF,
            Error::ECHILD => errno::ECHILD,
            Error::EAGAIN => errno::EAGAIN,
            Error::ENOMEM => errno::ENOMEM,
            Error::EACCES => errno::EACCES,
            Error::EFAULT => errno::EFAULT,
            Error::EBUSY => errno::EBUSY,
            Error::EEXIST => errno::EEXIST,
            Error::EXDEV => errno::EXDEV,
            Error::ENODEV => errno::ENODEV,
            Error::ENOTDIR => errno::ENOTDIR,
            Error::EISDIR => errno::EISDIR,
            Error::EINVAL => errno::EINVAL,
            Error::ENFILE => errno::ENFILE,
            Error::EMFILE => errno::EMFILE,
            Error::ENOSPC => errno::ENOSPC,
            Error::EROFS => errno::EROFS,
            Error::EMLINK => errno::EMLINK,
            Error::EDOM => errno::EDOM,
            Error::ERANGE => errno::ERANGE,
            Error::EDEADLK => errno::EDEADLK,
            Error::ENAMETOOLONG => errno::ENAMETOOLONG,
            Error::ENOLCK => errno::ENOLCK,
            Error::ENOSYS => errno::ENOSYS,
            Error::ENOTEMPTY => errno::ENOTEMPTY,
            Error::ENODATA => errno::ENODATA,
            Error::ETIME => errno::ETIME,
            Error::EBADMSG => errno::EBADMSG,
            Error::EOVERFLOW => errno::EOVERFLOW,
            Error::EILSEQ => errno::EILSEQ,
            Error::ERESTART => errno::ERESTART,
            Error::ENOTSOCK => errno::ENOTSOCK,
            Error::EMSGSIZE => errno::EMSGSIZE,
            Error::EOPNOTSUPP => errno::EOPNOTSUPP,
            Error::EADDRINUSE => errno::EADDRINUSE,
            Error::EADDRNOTAVAIL => errno::EADDRNOTAVAIL,
            Error::ENOBUFS => errno::ENOBUFS,
            Error::EISCONN => errno::EISCONN,
            Error::ENOTCONN => errno::ENOTCONN,
            Error::ETIMEDOUT => errno::ETIMEDOUT,
            Error::ECONNREFUSED => errno::ECONNREFUSED,
            Error::Unknown(n) => n,
            Error::Grant(_) => return None,
        })
    }

    /// A short description (the comment text of `errno.h`).
    pub const fn description(&self) -> &'static str {
        match *self {
            Error::EPERM => "Operation not permitted",
            Error::ENOENT => "No such file or directory",
            Error::ESRCH => "No such process",
            Error::EINTR => "Interrupted system call",
            Error::EIO => "I/O error",
            Error::ENXIO => "No such device or address",
            Error::E2BIG => "Arg list too long",
            Error::ENOEXEC => "Exec format error",
            Error::EBADF => "Bad file number",
            Error::ECHILD => "No child processes",
            Error::EAGAIN => "Try again",
            Error::ENOMEM => "Out of memory",
            Error::EACCES => "Permission denied",
            Error::EFAULT => "Bad address",
            Error::EBUSY => "Device or resource busy",
            Error::EEXIST => "File exists",
            Error::EXDEV => "Cross-device link",
            Error::ENODEV => "No such device",
            Error::ENOTDIR => "Not a directory",
            Error::EISDIR => "Is a directory",
            Error::EINVAL => "Invalid argument",
            Error::ENFILE => "File table overflow",
            Error::EMFILE => "Too many open files",
            Error::ENOSPC => "No space left on device",
            Error::EROFS => "Read-only file system",
            Error::EMLINK => "Too many links",
            Error::EDOM => "Math argument out of domain of func",
            Error::ERANGE => "Math result not representable",
            Error::EDEADLK => "Resource deadlock would occur",
            Error::ENAMETOOLONG => "File name too long",
            Error::ENOLCK => "No record locks available",
            Error::ENOSYS => "Function not implemented",
            Error::ENOTEMPTY => "Directory not empty",
            Error::ENODATA => "No data available",
            Error::ETIME => "Timer expired",
            Error::EBADMSG => "Not a data message",
            Error::EOVERFLOW => "Value too large for defined data type",
            Error::EILSEQ => "Illegal byte sequence",
            Error::ERESTART => "Interrupted system call should be restarted",
            Error::ENOTSOCK => "Socket operation on non-socket",
            Error::EMSGSIZE => "Message too large",
            Error::EOPNOTSUPP => "Operation not supported on transport endpoint",
            Error::EADDRINUSE => "Address already in use",
            Error::EADDRNOTAVAIL => "Cannot assign requested address",
            Error::ENOBUFS => "No buffer space available",
            Error::EISCONN => "Transport endpoint is already connected",
            Error::ENOTCONN => "Transport endpoint is not connected",
            Error::ETIMEDOUT => "Connection timed out",
            Error::ECONNREFUSED => "Connection refused",
            Error::Grant(s) => s.description(),
            Error::Unknown(_) => "unknown error",
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Error::Grant(s) => write!(f, "grant operation failed: {s}"),
            Error::Unknown(n) => write!(f, "unknown Xen error (errno {n})"),
            e => write!(f, "{} (errno {})", e.description(), e.errno().unwrap_or(0)),
        }
    }
}

impl core::error::Error for Error {}

impl From<GrantStatus> for Error {
    fn from(s: GrantStatus) -> Error {
        Error::Grant(s)
    }
}

/// Per-operation status of a grant-table operation (`GNTST_*`,
/// `xen/include/public/grant_table.h`), stored in the `status` field of the
/// operation structs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GrantStatus {
    /// `GNTST_okay` (0): normal return.
    Okay,
    /// `GNTST_general_error` (-1): general undefined error.
    GeneralError,
    /// `GNTST_bad_domain` (-2): unrecognised domain id.
    BadDomain,
    /// `GNTST_bad_gntref` (-3): unrecognised or inappropriate grant reference.
    BadGntref,
    /// `GNTST_bad_handle` (-4): unrecognised or inappropriate handle.
    BadHandle,
    /// `GNTST_bad_virt_addr` (-5): inappropriate virtual address to map.
    BadVirtAddr,
    /// `GNTST_bad_dev_addr` (-6): inappropriate device address to unmap.
    BadDevAddr,
    /// `GNTST_no_device_space` (-7): out of space in I/O MMU.
    NoDeviceSpace,
    /// `GNTST_permission_denied` (-8): not enough privilege for operation.
    PermissionDenied,
    /// `GNTST_bad_page` (-9): specified page was invalid for operation.
    BadPage,
    /// `GNTST_bad_copy_arg` (-10): copy arguments cross page boundary.
    BadCopyArg,
    /// `GNTST_address_too_big` (-11): transfer page address too large.
    AddressTooBig,
    /// `GNTST_eagain` (-12): operation not done; try again.
    Eagain,
    /// `GNTST_no_space` (-13): out of space (handles etc.).
    NoSpace,
    /// Any other status value.
    Unknown(i16),
}

impl GrantStatus {
    /// Decodes a `status` field.
    pub const fn from_i16(status: i16) -> GrantStatus {
        match status {
            0 => GrantStatus::Okay,
            -1 => GrantStatus::GeneralError,
            -2 => GrantStatus::BadDomain,
            -3 => GrantStatus::BadGntref,
            -4 => GrantStatus::BadHandle,
            -5 => GrantStatus::BadVirtAddr,
            -6 => GrantStatus::BadDevAddr,
            -7 => GrantStatus::NoDeviceSpace,
            -8 => GrantStatus::PermissionDenied,
            -9 => GrantStatus::BadPage,
            -10 => GrantStatus::BadCopyArg,
            -11 => GrantStatus::AddressTooBig,
            -12 => GrantStatus::Eagain,
            -13 => GrantStatus::NoSpace,
            other => GrantStatus::Unknown(other),
        }
    }

    /// The raw `GNTST_*` value.
    pub const fn as_i16(self) -> i16 {
        match self {
            GrantStatus::Okay => 0,
            GrantStatus::GeneralError => -1,
            GrantStatus::BadDomain => -2,
            GrantStatus::BadGntref => -3,
            GrantStatus::BadHandle => -4,
            GrantStatus::BadVirtAddr => -5,
            GrantStatus::BadDevAddr => -6,
            GrantStatus::NoDeviceSpace => -7,
            GrantStatus::PermissionDenied => -8,
            GrantStatus::BadPage => -9,
            GrantStatus::BadCopyArg => -10,
            GrantStatus::AddressTooBig => -11,
            GrantStatus::Eagain => -12,
            GrantStatus::NoSpace => -13,
            GrantStatus::Unknown(s) => s,
        }
    }

    /// `Ok(())` for [`GrantStatus::Okay`], otherwise `Err(Error::Grant(self))`.
    pub const fn into_result(self) -> Result<()> {
        match self {
            GrantStatus::Okay => Ok(()),
            s => Err(Error::Grant(s)),
        }
    }

    /// Decodes a `status` field and converts it with [`GrantStatus::into_result`].
    pub const fn check(status: i16) -> Result<()> {
        GrantStatus::from_i16(status).into_result()
    }

    /// A short description (the text of Xen's `GNTTABOP_error_msgs`).
    pub const fn description(self) -> &'static str {
        match self {
            GrantStatus::Okay => "okay",
            GrantStatus::GeneralError => "undefined error",
            GrantStatus::BadDomain => "unrecognised domain id",
            GrantStatus::BadGntref => "invalid grant reference",
            GrantStatus::BadHandle => "invalid mapping handle",
            GrantStatus::BadVirtAddr => "invalid virtual address",
            GrantStatus::BadDevAddr => "invalid device address",
            GrantStatus::NoDeviceSpace => "no spare translation slot in the I/O MMU",
            GrantStatus::PermissionDenied => "permission denied",
            GrantStatus::BadPage => "bad page",
            GrantStatus::BadCopyArg => "copy arguments cross page boundary",
            GrantStatus::AddressTooBig => "page address size too large",
            GrantStatus::Eagain => "operation not done; try again",
            GrantStatus::NoSpace => "out of space",
            GrantStatus::Unknown(_) => "unknown grant status",
        }
    }
}

impl fmt::Display for GrantStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (GNTST {})", self.description(), self.as_i16())
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::string::ToString;

    /// Every value of `xen/include/public/errno.h`.
    const ALL: &[(i64, Error)] = &[
        (1, Error::EPERM),
        (2, Error::ENOENT),
        (3, Error::ESRCH),
        (4, Error::EINTR),
        (5, Error::EIO),
        (6, Error::ENXIO),
        (7, Error::E2BIG),
        (8, Error::ENOEXEC),
        (9, Error::EBADF),
        (10, Error::ECHILD),
        (11, Error::EAGAIN),
        (12, Error::ENOMEM),
        (13, Error::EACCES),
        (14, Error::EFAULT),
        (16, Error::EBUSY),
        (17, Error::EEXIST),
        (18, Error::EXDEV),
        (19, Error::ENODEV),
        (20, Error::ENOTDIR),
        (21, Error::EISDIR),
        (22, Error::EINVAL),
        (23, Error::ENFILE),
        (24, Error::EMFILE),
        (28, Error::ENOSPC),
        (30, Error::EROFS),
        (31, Error::EMLINK),
        (33, Error::EDOM),
        (34, Error::ERANGE),
        (35, Error::EDEADLK),
        (36, Error::ENAMETOOLONG),
        (37, Error::ENOLCK),
        (38, Error::ENOSYS),
        (39, Error::ENOTEMPTY),
        (61, Error::ENODATA),
        (62, Error::ETIME),
        (74, Error::EBADMSG),
        (75, Error::EOVERFLOW),
        (84, Error::EILSEQ),
        (85, Error::ERESTART),
        (88, Error::ENOTSOCK),
        (90, Error::EMSGSIZE),
        (95, Error::EOPNOTSUPP),
        (98, Error::EADDRINUSE),
        (99, Error::EADDRNOTAVAIL),
        (105, Error::ENOBUFS),
        (106, Error::EISCONN),
        (107, Error::ENOTCONN),
        (110, Error::ETIMEDOUT),
        (111, Error::ECONNREFUSED),
    ];

    #[test]
    fn from_ret_every_errno() {
        for &(n, e) in ALL {
            assert_eq!(Error::from_ret(-n), Err(e), "errno {n}");
            assert_eq!(Error::from_errno(n), e);
            assert_eq!(e.errno(), Some(n));
        }
        assert_eq!(ALL.len(), 49);
    }

    #[test]
    fn aliases() {
        assert_eq!(Error::from_errno(errno::EWOULDBLOCK), Error::EAGAIN);
        assert_eq!(Error::from_errno(errno::EDEADLOCK), Error::EDEADLK);
    }

    #[test]
    fn from_ret_success_and_unknown() {
        assert_eq!(Error::from_ret(0), Ok(0));
        assert_eq!(Error::from_ret(42), Ok(42));
        assert_eq!(Error::from_ret(i64::MAX), Ok(i64::MAX as u64));
        assert_eq!(Error::from_ret(-15), Err(Error::Unknown(15)));
        assert_eq!(Error::from_ret(-4242), Err(Error::Unknown(4242)));
        assert_eq!(Error::Unknown(15).errno(), Some(15));
        assert_eq!(Error::from_ret(i64::MIN), Err(Error::Unknown(i64::MIN)));
    }

    #[test]
    fn display() {
        assert_eq!(Error::EINVAL.to_string(), "Invalid argument (errno 22)");
        assert_eq!(
            Error::Unknown(4242).to_string(),
            "unknown Xen error (errno 4242)"
        );
        assert_eq!(
            Error::Grant(GrantStatus::BadGntref).to_string(),
            "grant operation failed: invalid grant reference (GNTST -3)"
        );
    }

    #[test]
    fn grant_status_codes() {
        let all = [
            (0, GrantStatus::Okay),
            (-1, GrantStatus::GeneralError),
            (-2, GrantStatus::BadDomain),
            (-3, GrantStatus::BadGntref),
            (-4, GrantStatus::BadHandle),
            (-5, GrantStatus::BadVirtAddr),
            (-6, GrantStatus::BadDevAddr),
            (-7, GrantStatus::NoDeviceSpace),
            (-8, GrantStatus::PermissionDenied),
            (-9, GrantStatus::BadPage),
            (-10, GrantStatus::BadCopyArg),
            (-11, GrantStatus::AddressTooBig),
            (-12, GrantStatus::Eagain),
            (-13, GrantStatus::NoSpace),
        ];
        for (n, s) in all {
            assert_eq!(GrantStatus::from_i16(n), s);
            assert_eq!(s.as_i16(), n);
        }
        assert_eq!(GrantStatus::from_i16(-14), GrantStatus::Unknown(-14));
        assert_eq!(GrantStatus::from_i16(1), GrantStatus::Unknown(1));
        assert_eq!(GrantStatus::Unknown(-14).as_i16(), -14);
        assert_eq!(GrantStatus::check(0), Ok(()));
        assert_eq!(
            GrantStatus::check(-8),
            Err(Error::Grant(GrantStatus::PermissionDenied))
        );
        assert_eq!(
            Error::from(GrantStatus::NoSpace),
            Error::Grant(GrantStatus::NoSpace)
        );
        assert_eq!(Error::Grant(GrantStatus::NoSpace).errno(), None);
    }
}
