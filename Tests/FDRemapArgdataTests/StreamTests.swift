// The stream reader and writer over real socketpairs and pipes, with real
// descriptors crossing: identity checked by fstat and by writing through
// them; every error path releases what it received.
import CFDRemapTestHooks
import CArgdata
import CFDRemapKernel
import FDRemap
import Glibc
import SystemPackage
import Testing

/// A connected pair of stream sockets (close-on-exec), closed by the caller.
private func socketPair() -> (CInt, CInt) {
    var sv: [CInt] = [-1, -1]
    let r = socketpair(AF_UNIX, CInt(SOCK_STREAM.rawValue) | CInt(SOCK_CLOEXEC.rawValue), 0, &sv)
    precondition(r == 0)
    return (sv[0], sv[1])
}

/// A pipe (close-on-exec): read end, write end.
private func makePipe() -> (CInt, CInt) {
    var p: [CInt] = [-1, -1]
    precondition(pipe(&p) == 0)
    for fd in p { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
    return (p[0], p[1])
}

/// Device and inode of a descriptor.
private func identity(_ fd: CInt) -> [UInt] {
    var st = stat()
    precondition(fstat(fd, &st) == 0)
    return [UInt(st.st_dev), UInt(st.st_ino)]
}

/// Sends value through a new writer on fd: the result of the pushes.
private func send(_ value: OpaquePointer, on fd: CInt) -> CInt {
    let w = argdata_writer_create()!
    defer { argdata_writer_free(w) }
    argdata_writer_set(w, value)
    return argdata_writer_push(w, fd)
}

/// Writes raw bytes to fd, all of them.
private func writeAll(_ fd: CInt, _ bytes: [UInt8]) {
    bytes.withUnsafeBytes { precondition(write(fd, $0.baseAddress, $0.count) == $0.count) }
}

/// Sends bytes on a socket, with descriptor passing attached if not nil.
private func sendRaw(_ sock: CInt, _ bytes: [UInt8], passing: CInt?) {
    var control = [UInt8](repeating: 0, count: 64)
    bytes.withUnsafeBytes { p in
        var iov = iovec(iov_base: UnsafeMutableRawPointer(mutating: p.baseAddress), iov_len: p.count)
        control.withUnsafeMutableBytes { cb in
            withUnsafeMutablePointer(to: &iov) { iovp in
                var msg = msghdr()
                msg.msg_iov = iovp
                msg.msg_iovlen = 1
                if var fd = passing {
                    // CMSG_LEN(sizeof(int)) and CMSG_SPACE(sizeof(int)).
                    msg.msg_control = cb.baseAddress
                    msg.msg_controllen = MemoryLayout<cmsghdr>.size + 8
                    let cm = cb.baseAddress!.assumingMemoryBound(to: cmsghdr.self)
                    cm.pointee.cmsg_len = MemoryLayout<cmsghdr>.size + 4
                    cm.pointee.cmsg_level = SOL_SOCKET
                    cm.pointee.cmsg_type = CInt(SCM_RIGHTS)
                    memcpy(cb.baseAddress! + MemoryLayout<cmsghdr>.size, &fd, 4)
                }
                precondition(sendmsg(sock, &msg, 0) == p.count)
            }
        }
    }
}

/// A message header: data length and descriptor count, big-endian.
private func header(length: UInt64) -> [UInt8] {
    (0..<8).reversed().map { UInt8(truncatingIfNeeded: length >> ($0 * 8)) }
}

@Suite struct Streams {
    @Test func aMessageWithDescriptorsCrossesASocketpair() throws {
        let (a, b) = socketPair()
        defer { close(a); close(b) }
        let file = scratchFile("cross")
        defer { close(file.fd) }
        let (pr, pw) = makePipe()
        defer { close(pr); close(pw) }

        let n = Nodes()
        defer { withExtendedLifetime(n) {} }
        let tree = n.map([(n.str("file"), n.fd(file.fd)), (n.str("pipe"), n.fd(pw)),
                          (n.str("again"), n.fd(file.fd))])
        #expect(send(tree, on: a) == 0)

        let r = argdata_reader_create(4096, 16)!
        defer { argdata_reader_free(r) }
        #expect(argdata_reader_pull(r, b) == 0)
        let msg = try #require(argdata_reader_get(r))
        #expect(cSerialize(msg).bytes == cSerialize(tree).bytes)
        var got: [String: CInt] = [:]
        var it = argdata_map_iterator_t()
        var k: OpaquePointer? = nil
        var v: OpaquePointer? = nil
        argdata_map_iterate(msg, &it)
        while argdata_map_get(&it, &k, &v) {
            var s: UnsafePointer<CChar>? = nil
            var fd: CInt = -1
            #expect(argdata_get_str_c(k, &s) == 0 && argdata_get_fd(v, &fd) == 0)
            got[String(cString: s!)] = fd
            argdata_map_next(&it)
        }
        #expect(it.index == iteratorEnd)
        let f = try #require(got["file"])
        let p = try #require(got["pipe"])
        #expect(got["again"] == f)                       // one descriptor, listed once
        #expect(f != file.fd && p != pw)                 // new descriptors, received
        #expect(identity(f) == identity(file.fd))        // the same open file
        #expect(fcntl(f, F_GETFD) & FD_CLOEXEC != 0)     // close-on-exec
        #expect(fcntl(p, F_GETFD) & FD_CLOEXEC != 0)
        // Writing through the received pipe end reaches our read end.
        #expect(write(p, "hi", 2) == 2)
        var buf = [UInt8](repeating: 0, count: 2)
        #expect(read(pr, &buf, 2) == 2 && buf == Array("hi".utf8))
        #expect(descriptors(referringTo: file.path) == 2)
        // The next pull (end of file here) releases them.
        close(a)
        #expect(argdata_reader_pull(r, b) == 0)
        #expect(argdata_reader_get(r) == nil)
        #expect(descriptors(referringTo: file.path) == 1)
    }

    @Test func releasedDescriptorsStayOpenAndAreNoLongerTheReaders() throws {
        let (a, b) = socketPair()
        defer { close(a); close(b) }
        let file = scratchFile("release")
        defer { close(file.fd) }
        let n = Nodes()
        defer { withExtendedLifetime(n) {} }
        let tree = n.seq([n.fd(file.fd)])
        #expect(send(tree, on: a) == 0 && send(tree, on: a) == 0)
        let r = argdata_reader_create(4096, 16)!
        #expect(argdata_reader_pull(r, b) == 0)
        var it = argdata_seq_iterator_t()
        var e: OpaquePointer? = nil
        argdata_seq_iterate(argdata_reader_get(r)!, &it)
        #expect(argdata_seq_get(&it, &e))
        var fd: CInt = -1
        #expect(argdata_get_fd(e, &fd) == 0)
        argdata_reader_release_fd(r, fd)
        #expect(argdata_get_fd(e, &fd) == EBADF)
        #expect(argdata_reader_pull(r, b) == 0)   // the second message
        argdata_reader_free(r)                      // closes the second's
        #expect(descriptors(referringTo: file.path) == 2)   // ours and the released one
        close(fd)
        #expect(descriptors(referringTo: file.path) == 1)
    }

    @Test func moreDescriptorsThanOneSendmsgCarries() throws {
        // Linux takes at most 253 descriptors a sendmsg: 600 go in chunks.
        let (a, b) = socketPair()
        defer { close(a); close(b) }
        let file = scratchFile("many")
        defer { close(file.fd) }
        var dups: [CInt] = []
        for _ in 0..<600 { dups.append(fcntl(file.fd, F_DUPFD_CLOEXEC, 0)) }
        #expect(!dups.contains(-1))
        let n = Nodes()
        defer { withExtendedLifetime(n) {} }
        let tree = n.seq(dups.map { n.fd($0) })
        let sent = cSerialize(tree)
        #expect(sent.fds == dups)
        #expect(send(tree, on: a) == 0)
        for d in dups { close(d) }
        let r = argdata_reader_create(1 << 20, 1000)!
        #expect(argdata_reader_pull(r, b) == 0)
        let msg = argdata_reader_get(r)!
        // Renumbered again, the indices are the sender's: 0 .. 599.
        #expect(cSerialize(msg).bytes == sent.bytes)
        #expect(descriptors(referringTo: file.path) == 601)
        let received = cSerialize(msg).fds
        #expect(received.count == 600 && Set(received).count == 600)
        #expect(received.allSatisfy { identity($0) == identity(file.fd) })
        argdata_reader_free(r)
        #expect(descriptors(referringTo: file.path) == 1)
    }

    @Test func descriptorsOverANonSocketAreENOTSOCK() {
        let (pr, pw) = makePipe()
        defer { close(pr); close(pw) }
        let n = Nodes()
        defer { withExtendedLifetime(n) {} }
        let w = argdata_writer_create()!
        defer { argdata_writer_free(w) }
        argdata_writer_set(w, n.seq([n.fd(pr)]))
        #expect(argdata_writer_push(w, pw) == ENOTSOCK)
        // Nothing was written; the writer takes the next message.
        argdata_writer_set(w, n.str("plain"))
        #expect(argdata_writer_push(w, pw) == 0)
        let r = argdata_reader_create(4096, 4)!
        defer { argdata_reader_free(r) }
        #expect(argdata_reader_pull(r, pr) == 0)
        #expect(cSerialize(argdata_reader_get(r)!).bytes == hex("08 70 6c 61 69 6e 00"))
    }

    @Test func theFramingIsTheReferences() {
        let (pr, pw) = makePipe()
        defer { close(pr); close(pw) }
        let n = Nodes()
        defer { withExtendedLifetime(n) {} }
        #expect(send(n.int(300), on: pw) == 0)
        var buf = [UInt8](repeating: 0, count: 64)
        let got = read(pr, &buf, 64)
        #expect(Array(buf[..<got]) == header(length: 3) + hex("05 01 2c"))
    }

    @Test func anOverlongMessageIsEMSGSIZEAndItsDescriptorsAreClosed() {
        let (a, b) = socketPair()
        defer { close(a); close(b) }
        let file = scratchFile("msgsize")
        defer { close(file.fd) }
        let n = Nodes()
        defer { withExtendedLifetime(n) {} }
        #expect(send(n.seq([n.fd(file.fd), n.str(String(repeating: "x", count: 100))]), on: a) == 0)
        let r = argdata_reader_create(50, 4)!
        #expect(argdata_reader_pull(r, b) == EMSGSIZE)
        #expect(argdata_reader_get(r) == nil)
        #expect(descriptors(referringTo: file.path) == 1)
        #expect(argdata_reader_pull(r, b) == EMSGSIZE)   // the stream is lost
        argdata_reader_free(r)
        // Too many descriptors is EMSGSIZE too.
        let (c, d) = socketPair()
        defer { close(c); close(d) }
        #expect(send(n.seq([n.fd(file.fd), n.fd(0), n.fd(1)]), on: c) == 0)
        let r2 = argdata_reader_create(4096, 2)!
        #expect(argdata_reader_pull(r2, d) == EMSGSIZE)
        argdata_reader_free(r2)
        #expect(descriptors(referringTo: file.path) == 1)
    }

    @Test func aCutShortMessageIsEBADMSGAndItsDescriptorsAreClosed() {
        let file = scratchFile("badmsg")
        defer { close(file.fd) }
        let n = Nodes()
        defer { withExtendedLifetime(n) {} }
        let data = cSerialize(n.seq([n.fd(file.fd), n.int(7)])).bytes
        let full = header(length: UInt64(data.count)) + data
        // Cut in the header, after it, one byte short.
        for (cut, passing) in [(5, true), (8, true), (full.count - 1, true)] {
            let (a, b) = socketPair()
            sendRaw(a, Array(full[..<cut]), passing: passing ? file.fd : nil)
            close(a)
            let r = argdata_reader_create(4096, 4)!
            #expect(argdata_reader_pull(r, b) == EBADMSG, "cut at \(cut)")
            #expect(descriptors(referringTo: file.path) == 1, "cut at \(cut)")
            #expect(argdata_reader_pull(r, b) == EBADMSG)   // the stream is lost
            argdata_reader_free(r)
            close(b)
        }
        // A whole message whose descriptor never came is a message (the
        // header does not count them, as the reference's does not): the
        // descriptor is simply not there.
        let (a, b) = socketPair()
        defer { close(b) }
        sendRaw(a, full, passing: nil)
        close(a)
        let r = argdata_reader_create(4096, 4)!
        defer { argdata_reader_free(r) }
        #expect(argdata_reader_pull(r, b) == 0)
        var it = argdata_seq_iterator_t()
        var e: OpaquePointer? = nil
        var fd: CInt = -1
        argdata_seq_iterate(argdata_reader_get(r), &it)
        #expect(argdata_seq_get(&it, &e) && argdata_get_fd(e, &fd) == EBADF)
    }

    @Test func aNonBlockingSocketResumesAPartialMessage() throws {
        let (a, b) = socketPair()
        defer { close(a); close(b) }
        _ = fcntl(b, F_SETFL, fcntl(b, F_GETFL) | O_NONBLOCK)
        let file = scratchFile("partial")
        defer { close(file.fd) }
        let n = Nodes()
        defer { withExtendedLifetime(n) {} }
        let tree = n.seq([n.fd(file.fd), n.str(String(repeating: "y", count: 1000))])
        let bytes = cSerialize(tree).bytes
        let r = argdata_reader_create(4096, 4)!
        defer { argdata_reader_free(r) }
        #expect(argdata_reader_pull(r, b) == EAGAIN)      // nothing yet
        // Send the header with the descriptor, then the data in two halves.
        let full = header(length: UInt64(bytes.count)) + bytes
        sendRaw(a, Array(full[..<20]), passing: file.fd)
        #expect(argdata_reader_pull(r, b) == EAGAIN)
        writeAll(a, Array(full[20..<500]))
        #expect(argdata_reader_pull(r, b) == EAGAIN)
        writeAll(a, Array(full[500...]))
        #expect(argdata_reader_pull(r, b) == 0)
        let msg = try #require(argdata_reader_get(r))
        // Without a list each descriptor is written as its number here.
        let received = cSerialize(msg).fds
        #expect(received.count == 1)
        var numbered = bytes                    // 07 85 03 <index 0> ...
        let fd = UInt32(bitPattern: received.first ?? -1)
        numbered[3..<7] = [24, 16, 8, 0].map { UInt8(truncatingIfNeeded: fd >> $0) }[...]
        #expect(cSerialize(msg, collect: false).bytes == numbered)
        #expect(cSerialize(msg).fds.map(identity) == [identity(file.fd)])
    }

    @Test func outOfMemoryReleasesEverything() {
        let file = scratchFile("nomem")
        defer { close(file.fd) }
        let n = Nodes()
        defer { withExtendedLifetime(n) {} }
        let tree = n.seq([n.fd(file.fd), n.int(1)])
        // Fail each allocation of writer and reader in turn.
        var k: UInt64 = 1
        while k < 20 {
            let (a, b) = socketPair()
            let before = fdr_mem_inuse_thread()
            fdr_fail_arm(FDR_FAIL_MALLOC, k)
            var fired = false
            if let w = argdata_writer_create() {
                argdata_writer_set(w, tree)
                var e = argdata_writer_push(w, a)
                if e == ENOMEM { e = argdata_writer_push(w, a) }   // nothing armed now
                argdata_writer_free(w)
                if let r = argdata_reader_create(4096, 4) {
                    var p = argdata_reader_pull(r, b)
                    if p == ENOMEM { p = argdata_reader_pull(r, b) }
                    #expect(e == 0 && p == 0, "k = \(k)")
                    argdata_reader_free(r)
                }
            }
            fired = fdr_fail_fired(FDR_FAIL_MALLOC) != 0
            fdr_fail_arm(FDR_FAIL_MALLOC, 0)
            close(a)
            close(b)
            #expect(fdr_mem_inuse_thread() == before, "k = \(k)")
            #expect(descriptors(referringTo: file.path) == 1, "k = \(k)")
            if !fired { break }
            k += 1
        }
        #expect(k > 3)
    }

    @Test func endOfFileBetweenMessagesIsNotAnError() {
        let (a, b) = socketPair()
        defer { close(b) }
        let n = Nodes()
        defer { withExtendedLifetime(n) {} }
        #expect(send(n.int(1), on: a) == 0)
        close(a)
        let r = argdata_reader_create(64, 0)!
        defer { argdata_reader_free(r) }
        #expect(argdata_reader_pull(r, b) == 0 && argdata_reader_get(r) != nil)
        #expect(argdata_reader_pull(r, b) == 0 && argdata_reader_get(r) == nil)
        #expect(argdata_reader_pull(r, b) == 0 && argdata_reader_get(r) == nil)
    }
}
