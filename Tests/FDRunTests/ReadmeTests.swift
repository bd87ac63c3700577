// The README's main command, as a reader runs it from the repository's
// root: fdrun starts the show-descriptors example with its configuration.
import Foundation
import Glibc
import Testing

@Suite struct ReadmeTests {
    /// `.build/debug/fdrun .build/debug/show-descriptors
    /// Examples/show-descriptors/show.yaml`: the program gets exactly the
    /// four descriptors of the configuration, reads the file and lists
    /// the directory it was handed, and ends by itself with status 0.
    @Test func mainCommand() throws {
        // The configuration's paths are relative to the repository's root,
        // which is where `swift test` runs.
        try #require(FileManager.default.currentDirectoryPath == packageRoot,
                     "tests run in \(FileManager.default.currentDirectoryPath)")
        let run = fdrun([product("show-descriptors"), "Examples/show-descriptors/show.yaml"])
        #expect(run.ending == .exited(0), "\(run.stderr)")
        #expect(run.stderr.isEmpty)
        let out = run.stdout
        let descriptors = out.split(separator: "\n").filter { $0.hasPrefix("  ") && $0.dropFirst(2).first?.isNumber == true }
        #expect(descriptors.map { $0.split(separator: ":")[0] } == ["  0", "  1", "  2", "  3"], "\(out)")
        #expect(descriptors.count == 4 && descriptors[0].hasPrefix("  0: pipe, write-only"))
        #expect(descriptors.count == 4
            && descriptors[1] == "  1: regular file, read-only: \(packageRoot)/Examples/show-descriptors/greeting.txt")
        #expect(descriptors.count == 4 && descriptors[2] == "  2: directory, read-only: \(packageRoot)/Examples")
        #expect(descriptors.count == 4 && descriptors[3].hasPrefix("  3: socket inet stream, listening on 127.0.0.1:"))
        let greeting = try String(contentsOfFile: packageRoot + "/Examples/show-descriptors/greeting.txt",
                                  encoding: .utf8)
        #expect(out.contains("The file I was handed as descriptor 1 says:\n" + greeting))
        #expect(out.contains("The directory I was handed as descriptor 2 holds:\n  hello-server show-descriptors\n"))
        #expect(out.hasPrefix("My argdata, as fdrun built it from the configuration:\n%TAG ! tag:nuxi.nl,2015:cloudabi/\n---\n"))
    }
}
