//! The kernel32 and advapi32 calls and structures the Windows halves need
//! (std has none of them). Layouts as in the Windows SDK headers, for
//! 64-bit and 32-bit Windows alike.

#![allow(non_snake_case, clippy::upper_case_acronyms)]

use std::ffi::c_void;

pub type HANDLE = *mut c_void;
pub type BOOL = i32;

pub const JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE: u32 = 0x0000_2000;
/// JobObjectExtendedLimitInformation.
pub const JOB_OBJECT_EXTENDED_LIMIT_INFORMATION_CLASS: i32 = 9;

/// JOBOBJECT_BASIC_LIMIT_INFORMATION.
#[repr(C)]
pub struct JobBasicLimits {
    pub per_process_user_time_limit: i64,
    pub per_job_user_time_limit: i64,
    pub limit_flags: u32,
    pub minimum_working_set_size: usize,
    pub maximum_working_set_size: usize,
    pub active_process_limit: u32,
    pub affinity: usize,
    pub priority_class: u32,
    pub scheduling_class: u32,
}

/// IO_COUNTERS.
#[repr(C)]
pub struct IoCounters {
    pub counts: [u64; 6],
}

/// JOBOBJECT_EXTENDED_LIMIT_INFORMATION.
#[repr(C)]
pub struct JobExtendedLimits {
    pub basic: JobBasicLimits,
    pub io_info: IoCounters,
    pub process_memory_limit: usize,
    pub job_memory_limit: usize,
    pub peak_process_memory_used: usize,
    pub peak_job_memory_used: usize,
}

/// FILETIME: 100 ns intervals since 1601-01-01, in two halves.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct FileTime {
    pub low: u32,
    pub high: u32,
}

/// BY_HANDLE_FILE_INFORMATION.
#[repr(C)]
#[derive(Default)]
pub struct ByHandleFileInformation {
    pub attributes: u32,
    pub creation: FileTime,
    pub last_access: FileTime,
    pub last_write: FileTime,
    pub volume_serial: u32,
    pub size_high: u32,
    pub size_low: u32,
    pub links: u32,
    pub index_high: u32,
    pub index_low: u32,
}

/// FILE_BASIC_INFO (class FileBasicInfo, 0).
#[repr(C)]
#[derive(Default)]
pub struct FileBasicInfo {
    pub creation: i64,
    pub last_access: i64,
    pub last_write: i64,
    pub change: i64,
    pub attributes: u32,
}
pub const FILE_BASIC_INFO_CLASS: i32 = 0;

/// FILE_ALLOCATION_INFO (class FileAllocationInfo, 5).
#[repr(C)]
pub struct FileAllocationInfo {
    pub size: i64,
}
pub const FILE_ALLOCATION_INFO_CLASS: i32 = 5;

/// COORD, SMALL_RECT and CONSOLE_SCREEN_BUFFER_INFO.
#[repr(C)]
#[derive(Default)]
pub struct ConsoleInfo {
    pub size: [i16; 2],
    pub cursor: [i16; 2],
    pub attributes: u16,
    pub window: [i16; 4],
    pub max_window: [i16; 2],
}

/// OVERLAPPED, as LockFileEx reads it (offset 0).
#[repr(C)]
pub struct Overlapped {
    pub internal: usize,
    pub internal_high: usize,
    pub offset: u32,
    pub offset_high: u32,
    pub event: HANDLE,
}

pub const STD_ERROR_HANDLE: u32 = -12i32 as u32;
pub const STD_INPUT_HANDLE: u32 = -10i32 as u32;
pub const STD_OUTPUT_HANDLE: u32 = -11i32 as u32;
pub const HANDLE_FLAG_INHERIT: u32 = 1;
pub const PROCESS_QUERY_LIMITED_INFORMATION: u32 = 0x1000;
pub const PROCESS_TERMINATE: u32 = 0x0001;
pub const STILL_ACTIVE: u32 = 259;
pub const LOCKFILE_FAIL_IMMEDIATELY: u32 = 1;
pub const LOCKFILE_EXCLUSIVE_LOCK: u32 = 2;
pub const TOKEN_QUERY: u32 = 0x0008;
/// TokenUser and TokenElevation (TOKEN_INFORMATION_CLASS).
pub const TOKEN_USER_CLASS: i32 = 1;
pub const TOKEN_ELEVATION_CLASS: i32 = 20;
/// SE_FILE_OBJECT; OWNER_ and DACL_SECURITY_INFORMATION.
pub const SE_FILE_OBJECT: i32 = 1;
pub const OWNER_SECURITY_INFORMATION: u32 = 1;
pub const DACL_SECURITY_INFORMATION: u32 = 4;
pub const ACCESS_ALLOWED_ACE_TYPE: u8 = 0;
pub const INHERIT_ONLY_ACE: u8 = 0x08;

/// ACL and ACE_HEADER; an ACCESS_ALLOWED_ACE is the header, a mask and
/// the SID from `SidStart` on.
#[repr(C)]
pub struct Acl {
    pub revision: u8,
    pub sbz1: u8,
    pub size: u16,
    pub count: u16,
    pub sbz2: u16,
}
#[repr(C)]
pub struct AceHeader {
    pub kind: u8,
    pub flags: u8,
    pub size: u16,
}
#[repr(C)]
pub struct AccessAllowedAce {
    pub header: AceHeader,
    pub mask: u32,
    pub sid_start: u32,
}

pub type CtrlHandler = unsafe extern "system" fn(u32) -> BOOL;

#[link(name = "kernel32")]
unsafe extern "system" {
    pub fn CreateJobObjectW(attributes: *mut c_void, name: *const u16) -> HANDLE;
    pub fn SetInformationJobObject(job: HANDLE, class: i32, info: *mut c_void, len: u32) -> BOOL;
    pub fn AssignProcessToJobObject(job: HANDLE, process: HANDLE) -> BOOL;
    pub fn TerminateJobObject(job: HANDLE, exit_code: u32) -> BOOL;
    pub fn CloseHandle(handle: HANDLE) -> BOOL;
    pub fn GetFileInformationByHandle(file: HANDLE, info: *mut ByHandleFileInformation) -> BOOL;
    pub fn GetFileInformationByHandleEx(
        file: HANDLE,
        class: i32,
        info: *mut c_void,
        len: u32,
    ) -> BOOL;
    pub fn SetFileInformationByHandle(
        file: HANDLE,
        class: i32,
        info: *mut c_void,
        len: u32,
    ) -> BOOL;
    pub fn GetDiskFreeSpaceExW(
        dir: *const u16,
        free_to_caller: *mut u64,
        total: *mut u64,
        free_total: *mut u64,
    ) -> BOOL;
    pub fn OpenProcess(access: u32, inherit: BOOL, pid: u32) -> HANDLE;
    pub fn GetExitCodeProcess(process: HANDLE, code: *mut u32) -> BOOL;
    pub fn GetProcessTimes(
        process: HANDLE,
        creation: *mut FileTime,
        exit: *mut FileTime,
        kernel: *mut FileTime,
        user: *mut FileTime,
    ) -> BOOL;
    pub fn TerminateProcess(process: HANDLE, code: u32) -> BOOL;
    pub fn GetCurrentProcess() -> HANDLE;
    pub fn SetConsoleCtrlHandler(handler: Option<CtrlHandler>, add: BOOL) -> BOOL;
    pub fn GetStdHandle(which: u32) -> HANDLE;
    pub fn SetHandleInformation(object: HANDLE, mask: u32, flags: u32) -> BOOL;
    pub fn GetConsoleScreenBufferInfo(console: HANDLE, info: *mut ConsoleInfo) -> BOOL;
    pub fn LockFileEx(
        file: HANDLE,
        flags: u32,
        reserved: u32,
        low: u32,
        high: u32,
        overlapped: *mut Overlapped,
    ) -> BOOL;
    pub fn LocalFree(mem: *mut c_void) -> *mut c_void;
}

#[link(name = "advapi32")]
unsafe extern "system" {
    pub fn OpenProcessToken(process: HANDLE, access: u32, token: *mut HANDLE) -> BOOL;
    pub fn GetTokenInformation(
        token: HANDLE,
        class: i32,
        info: *mut c_void,
        len: u32,
        needed: *mut u32,
    ) -> BOOL;
    pub fn GetSecurityInfo(
        handle: HANDLE,
        object_type: i32,
        what: u32,
        owner: *mut *mut c_void,
        group: *mut *mut c_void,
        dacl: *mut *mut Acl,
        sacl: *mut *mut Acl,
        descriptor: *mut *mut c_void,
    ) -> u32;
}

#[link(name = "bcrypt")]
unsafe extern "system" {
    pub fn BCryptGenRandom(alg: *mut c_void, buf: *mut u8, len: u32, flags: u32) -> i32;
}

/// A handle closed when dropped.
pub struct Handle(pub HANDLE);

impl Drop for Handle {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: the handle is ours and closed once.
            unsafe { CloseHandle(self.0) };
        }
    }
}
