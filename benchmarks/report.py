#!/usr/bin/env python3
"""Turn a package-benchmark influx export into FDRemap's results.

Usage: report.py RESULTS.influx.csv MACHINE.txt [INTERLEAVED.txt]

Writes, beside this script:
  results.md    the tables and the ratios the performance issue asks for
  scaling.svg   cost per entry against table size, by implementation
and replaces the part of RESULTS.md between its results markers with
results.md.  Medians (p50) throughout; standard library only.
"""

import csv
import math
import os
import sys
from collections import defaultdict

HERE = os.path.dirname(os.path.abspath(__file__))

SIZES = [("1K", 1000), ("64K", 65536), ("1M", 1 << 20), ("16M", 1 << 24)]
LISTS = ["identity", "reversed", "random", "half", "same"]
IMPLS = [
    ("ours", "fdcopy_remapped + fdescfree_remapped"),
    ("exec", "proc_exec: copy-in, remap, install, old table released"),
    ("swift.exec", "Swift: ModelProcess.exec"),
    ("swift.module", "Swift: ModelProcess.remap"),
    ("freebsd", "FreeBSD 11 loop, core's allocator"),
    ("freebsd.exec", "FreeBSD 11 exec: copy-in, loop, old table released"),
    ("freebsd.malloc", "FreeBSD 11 loop, calloc(3)"),
    ("swift.array", "Swift: fds.map { table[$0] }"),
    ("refcount", "only the atomic inc / dec of each file"),
    ("gather", "gather loop (no checks, no counting)"),
    ("memcpy", "memcpy of the entries"),
]
COLORS = {
    "ours": "#d62728", "exec": "#ff7f0e", "swift.exec": "#e377c2",
    "swift.module": "#9467bd",
    "freebsd": "#1f77b4", "freebsd.exec": "#17becf",
    "freebsd.malloc": "#aec7e8", "swift.array": "#8c564b",
    "refcount": "#bcbd22", "gather": "#2ca02c", "memcpy": "#7f7f7f",
}


def load(path):
    """{test: {metric: p50}} from an influx export."""
    out = defaultdict(dict)
    with open(path, newline="") as f:
        rows = [r for r in csv.reader(f) if r and not r[0].startswith("#")]
    head = rows[0]
    col = {name: i for i, name in enumerate(head)}
    for r in rows[1:]:
        if float(r[col["percentile"]]) != 50.0:
            continue
        out[r[col["test"]]][r[col["metric"]]] = float(r[col["value"]])
    return out


def ns(ps):
    return ps / 1000.0


def fmt(x):
    if x is None:
        return "–"
    if x >= 100:
        return "%.0f" % x
    if x >= 10:
        return "%.1f" % x
    return "%.2f" % x


class Remap:
    """The remap results, by size, list and implementation."""

    def __init__(self, data):
        self.cell = {}
        for test, m in data.items():
            parts = test.split(".")
            if parts[0] != "Remap" or len(parts) < 4:
                continue
            size, lst, impl = parts[1], parts[2], ".".join(parts[3:])
            self.cell[(size, lst, impl)] = m

    def get(self, size, lst, impl, metric):
        m = self.cell.get((size, "all" if impl == "memcpy" else lst, impl))
        if m is None or metric not in m:
            return None
        return m[metric]

    def copy(self, size, lst, impl):
        v = self.get(size, lst, impl, "copyperentry(ps)")
        return None if v is None else ns(v)

    def total(self, size, lst, impl):
        v = self.get(size, lst, impl, "timeperentry(ps)")
        return None if v is None else ns(v)

    def free(self, size, lst, impl):
        v = self.get(size, lst, impl, "freeperentry(ps)")
        return None if v is None else ns(v)

    def bytes_per_entry(self, size, lst, impl):
        v = self.get(size, lst, impl, "tablebytesper1000entries")
        return None if v is None else v / 1000.0


def remap_tables(r):
    lines = []
    impls = [i for i, _ in IMPLS]
    for size, n in SIZES:
        if not any(k[0] == size for k in r.cell):
            continue
        lines.append("#### %s descriptors (n = %d)\n" % (size, n))
        lines.append("| list | " + " | ".join(impls) + " |")
        lines.append("|---" * (len(impls) + 1) + "|")
        for lst in LISTS:
            row = [lst]
            for impl in impls:
                c, f = r.copy(size, lst, impl), r.free(size, lst, impl)
                if c is None:
                    row.append("–")
                elif not f:
                    row.append(fmt(c))
                else:
                    row.append("%s + %s" % (fmt(c), fmt(f)))
            lines.append("| " + " | ".join(row) + " |")
        lines.append("")
    return "\n".join(lines)


def ratio(a, b):
    return None if a is None or b is None or b == 0 else a / b


def verdict(ok):
    return "met" if ok else "**not met**"


def calibration(data):
    m = data.get("Machine.calibration", {})
    gbps = m.get("memcpyof48MiB(MB/s)")
    dep = m.get("randomlinedependent(ps)")
    ind = m.get("randomlineindependent(ps)")
    sc = m.get("systemcall(ps)")
    if gbps is None:
        return ""
    return ("- Calibration, measured in this run: memcpy of 48 MiB %.1f GB/s; "
            "a random cache line %.1f ns read independently, %.0f ns as a "
            "dependent chase (256 MiB, 4 KiB pages)%s." %
            (gbps / 1000.0, (ind or 0) / 1000.0, (dep or 0) / 1000.0,
             "; a system call (getppid) %.0f ns" % (sc / 1000.0) if sc else ""))


def targets(r):
    out = []
    ex, fx = r.copy("1M", "random", "exec"), r.copy("1M", "random", "freebsd.exec")
    sx = r.copy("1M", "random", "swift.exec")
    q = ratio(fx, ex)
    if q is not None:
        text = ("- 1. proc_exec's table work (copy-in, remap, install, release "
                "of the old table), 1M random, against FreeBSD's (copy-in, its "
                "loop, a reference dropped per old slot): %.2f× faster (%s ns "
                "against %s ns an entry; target ≥ 5×: %s)" %
                (q, fmt(ex), fmt(fx), verdict(q >= 5)))
        qs = ratio(fx, sx)
        if qs is not None:
            text += ("; from Swift (ModelProcess.exec) %.2f× (%s ns; target ≥ "
                     "5×: %s)" % (qs, fmt(sx), verdict(qs >= 5)))
        out.append(text + ".")
    ei, gi = r.copy("1M", "identity", "exec"), r.copy("1M", "identity", "gather")
    q = ratio(ei, gi)
    if q is not None:
        out.append("- 2. proc_exec with the identity list, 1M, against a plain "
                   "gather of the entries: %.2f× its time (%s ns against %s; "
                   "target ≤ 2×: %s)." % (q, fmt(ei), fmt(gi), verdict(q <= 2)))
    us, fb = r.copy("1M", "random", "ours"), r.copy("1M", "random", "freebsd")
    q = ratio(fb, us)
    if q is not None:
        out.append("- 3. fdcopy_remapped alone (references taken), 1M random, "
                   "against FreeBSD's loop: %.2f× faster (%s ns against %s; "
                   "target ≥ 3×: %s). With the free of the table: %.2f×." %
                   (q, fmt(us), fmt(fb), verdict(q >= 3),
                    ratio(r.total("1M", "random", "freebsd"),
                          r.total("1M", "random", "ours"))))
    for lst in ["random", "identity"]:
        first, steady = r.copy("1M", lst, "exec.first"), r.copy("1M", lst, "exec")
        q = ratio(first, steady)
        if q is not None:
            out.append("- 4. The first proc_exec of a fresh process whose 1M "
                       "table sat idle for 3 s, %s list: %s ns an entry, %.2f× "
                       "the steady state (target ≤ 1.5×: %s; one sample)." %
                       (lst, fmt(first), q, verdict(q <= 1.5)))
    for size in ["1K", "64K"]:
        parts = []
        for lst in ["random", "same"]:
            a = ratio(r.copy(size, lst, "freebsd"), r.copy(size, lst, "ours"))
            b = ratio(r.copy(size, lst, "freebsd.exec"), r.copy(size, lst, "exec"))
            if a is not None and b is not None:
                parts.append("%s: remap %.2f×, exec %.2f×" % (lst, a, b))
        if parts:
            out.append("- 5. %s, against FreeBSD: %s." % (size, "; ".join(parts)))
    worst = None
    for impl in ["swift.module", "swift.exec"]:
        for size, _ in SIZES[1:]:
            for lst in LISTS:
                q = r.get(size, lst, impl,
                          "SwiftoverCcoreinthesameiteration(permille)")
                if q is not None and (worst is None or q / 1000.0 > worst[0]):
                    worst = (q / 1000.0, size, lst, impl)
    if worst is not None:
        out.append("- The Swift module against the C core on the same table "
                   "(each iteration times both, in alternating order; median "
                   "of the ratio), remap and exec, N ≥ 64K: at worst %+.1f%% "
                   "(%s, %s, %s; target within 5%%: %s)." %
                   ((worst[0] - 1) * 100, worst[3], worst[1], worst[2],
                    verdict(worst[0] <= 1.05)))
    qs = []
    for size, _ in SIZES:
        for lst in LISTS:
            q = ratio(r.total(size, lst, "swift.array"),
                      r.total(size, lst, "swift.module"))
            if q is not None:
                qs.append((q, size, lst))
    if qs:
        lo, hi = min(qs), max(qs)
        out.append("- The Swift module against the array of class references "
                   "(copy + free): from %.1f× (%s, %s) to %.1f× (%s, %s) "
                   "faster." % (lo[0], lo[1], lo[2], hi[0], hi[1], hi[2]))
    b = [(size, r.bytes_per_entry(size, "random", "ours"),
          r.bytes_per_entry(size, "random", "freebsd")) for size, _ in SIZES]
    b = [x for x in b if x[1] is not None]
    if b:
        out.append("- New table, bytes per entry (slots rounded up to 64, "
                   "bitmap, struct; target ≤ 32): ours " +
                   ", ".join("%s: %.3f" % (s, v) for s, v, _ in b) +
                   "; FreeBSD's shape " +
                   ", ".join("%s: %.3f" % (s, f) for s, _, f in b if f) + ".")
    return "\n".join(out)


def launch_ks(data):
    return sorted({int(t.split(".")[1]) for t in data if t.startswith("Launch.")
                   and t.split(".")[1].isdigit()})


def launch_target(data):
    """The launch targets, at every k, judged on the paired rows (each
    iteration times the launchers in turn, so the machine's drift falls on
    all alike): ours (C) within 1.1x the floor and no slower than
    posix_spawn with prebuilt actions; the Swift launcher within 1.1x the
    C one doing the same work (the descriptors carried as argdata)."""
    out = []
    for k in launch_ks(data):
        p = data.get("Launch.%d.paired" % k, {})
        sp = data.get("Launch.%d.swift.paired" % k, {})
        of, op = p.get("oursoverfloor(permille)"), p.get("oursoverprebuilt(permille)")
        if of is None or op is None:
            continue
        text = ("- Launch with %d descriptors, paired (median of %s): ours "
                "%s µs, the floor %s µs, posix_spawn with prebuilt actions %s "
                "µs; ours %.3f× the floor (target ≤ 1.1×: %s) and %.3f× "
                "prebuilt posix_spawn (target ≤ 1: %s)"
                % (k, "the per-iteration ratios",
                   fmt(p["ours(ns)"] / 1000), fmt(p["floor(ns)"] / 1000),
                   fmt(p["prebuilt(ns)"] / 1000), of / 1000,
                   verdict(of <= 1100), op / 1000, verdict(op <= 1000)))
        off = p.get("oursoverfreshfloor(permille)")
        if off is not None:
            text += ("; the fresh floor (the floor done our way) %s µs, ours "
                     "%.3f× it" % (fmt(p["freshfloor(ns)"] / 1000), off / 1000))
        soc = sp.get("swiftoverc(permille)")
        if soc is not None:
            text += ("; the Swift launcher %.3f× the C launcher with the "
                     "same tree (%s against %s µs; target ≤ 1.1×: %s)"
                     % (soc / 1000, fmt(sp["swift(ns)"] / 1000),
                        fmt(sp["c(ns)"] / 1000), verdict(soc <= 1100)))
        first = data.get("Launch.%d.ours.first" % k, {}).get("launch(ns)")
        if first is not None:
            text += ("; the first launch of a fresh process %s µs, %.2f× the "
                     "steady state (one sample)"
                     % (fmt(first / 1000), first / p["ours(ns)"]))
        out.append(text + ".")
    return "\n".join(out)


def launch_table(data):
    """Rows: descriptors passed; columns: implementations; µs a launch."""
    cells, impls, ks = {}, [], set()
    for t, m in data.items():
        parts = t.split(".")
        if parts[0] != "Launch" or "launch(ns)" not in m or parts[-1] == "first":
            continue
        k, impl = int(parts[1]), ".".join(parts[2:])
        cells[(k, impl)] = m["launch(ns)"] / 1000.0
        ks.add(k)
        if impl not in impls:
            impls.append(impl)
    if not cells:
        return ""
    order = ["ours", "ours.argdata", "ours.swift", "floor", "posix_spawn.prebuilt", "posix_spawn",
             "python", "foundation"]
    impls.sort(key=lambda i: order.index(i) if i in order else len(order))
    lines = ["| descriptors | " + " | ".join(impls) + " |",
             "|---" * (len(impls) + 1) + "|"]
    for k in sorted(ks):
        lines.append("| %d | " % k + " | ".join(
            fmt(cells[(k, i)]) if (k, i) in cells else "–" for i in impls) + " |")
    return "\n".join(lines) + "\n"


def svg_plot(r, panels, path):
    """Cost per entry (copy + free, ns, log) against n (log)."""
    W, H = 1230, 460
    pw, ph, top, left0 = 400, 330, 50, 70
    xs = [math.log2(n) for _, n in SIZES]
    xmin, xmax = 9.5, 24.5
    ymin, ymax = math.log10(0.1), math.log10(300)
    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" '
           'font-family="sans-serif" font-size="12">' % (W, H),
           '<rect width="100%" height="100%" fill="white"/>']
    for p, (title, lst) in enumerate(panels):
        left = left0 + p * (pw + 90)

        def X(x):
            return left + (x - xmin) / (xmax - xmin) * pw

        def Y(v):
            return top + ph - (math.log10(v) - ymin) / (ymax - ymin) * ph

        out.append('<text x="%d" y="%d" font-size="14" font-weight="bold">%s'
                   '</text>' % (left, top - 18, title))
        out.append('<rect x="%d" y="%d" width="%d" height="%d" fill="none" '
                   'stroke="#333"/>' % (left, top, pw, ph))
        for v in [0.1, 0.3, 1, 3, 10, 30, 100, 300]:
            out.append('<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" '
                       'stroke="#ddd"/>' % (left, left + pw, Y(v), Y(v)))
            out.append('<text x="%d" y="%.1f" text-anchor="end">%g</text>'
                       % (left - 5, Y(v) + 4, v))
        for (label, _), x in zip(SIZES, xs):
            out.append('<text x="%.1f" y="%d" text-anchor="middle">%s</text>'
                       % (X(x), top + ph + 16, label))
        # Where the old table alone (32 bytes a slot) outgrows a cache.
        for j, (cache, nbytes) in enumerate([("L2 2 MiB", 2 << 20),
                                             ("L3 32 MiB", 32 << 20)]):
            x = math.log2(nbytes / 32.0)
            out.append('<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" stroke="#999" '
                       'stroke-dasharray="4,4"/>' % (X(x), X(x), top, top + ph))
            out.append('<text x="%.1f" y="%d" fill="#666" font-size="10">old '
                       'table &gt; %s</text>' % (X(x) + 3, top + ph - 8 - 14 * j,
                                                 cache))
        out.append('<text x="%d" y="%d" text-anchor="middle">descriptors '
                   '(log scale)</text>' % (left + pw / 2, top + ph + 34))
        out.append('<text transform="translate(%d,%d) rotate(-90)" '
                   'text-anchor="middle">ns per entry, copy + free (log)'
                   '</text>' % (left - 45, top + ph / 2))
        for impl, _ in reversed(IMPLS):     # ours last, on top
            pts = []
            for (size, _), x in zip(SIZES, xs):
                v = r.total(size, lst, impl)
                if v is not None and v > 0:
                    pts.append((X(x), Y(max(v, 0.1))))
            if not pts:
                continue
            c = COLORS[impl]
            out.append('<polyline fill="none" stroke="%s" stroke-width="%d" '
                       'points="%s"/>' % (c, 3 if impl == "ours" else 2,
                                          " ".join("%.1f,%.1f" % q for q in pts)))
            for q in pts:
                out.append('<circle cx="%.1f" cy="%.1f" r="3" fill="%s"/>'
                           % (q[0], q[1], c))
    lx = left0 + 2 * (pw + 90) - 40
    out.append('<text x="%d" y="%d" font-weight="bold">implementation</text>'
               % (lx, top + 4))
    for k, (impl, desc) in enumerate(IMPLS):
        y = top + 22 + k * 34
        out.append('<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="%s" '
                   'stroke-width="3"/>' % (lx, lx + 18, y, y, COLORS[impl]))
        out.append('<text x="%d" y="%d">%s</text>' % (lx + 24, y + 4, impl))
        out.append('<text x="%d" y="%d" font-size="9" fill="#555">%s</text>'
                   % (lx + 24, y + 16, desc.replace("&", "&amp;")
                      .replace("<", "&lt;")))
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def main():
    data = load(sys.argv[1])
    machine = open(sys.argv[2]).read().strip() if len(sys.argv) > 2 else ""
    r = Remap(data)
    md = ["<!-- Written by benchmarks/report.py; do not edit by hand. -->", ""]
    if machine:
        md += ["Machine and run:", "", "```", machine, "```", ""]
    md += ["### The targets", "", calibration(data), targets(r) + "\n" +
           launch_target(data), "",
           "### Remap: ns per entry, copy + free (medians)", "",
           "Columns are implementations, rows descriptor lists; a cell is the "
           "copy's time per entry plus the free's (gather and memcpy have no "
           "free; the exec rows time the whole call as the copy). Every table's "
           "files were installed in random order, so even the identity list "
           "visits them in random memory order.", "",
           remap_tables(r)]
    launch = launch_table(data)
    if launch:
        md += ["### Launch: µs from spawn to the exit of /bin/true (medians)", "",
               "ours: program_spawn_raw with the list. ours.argdata: C's "
               "program_spawn with the descriptors as an argdata sequence "
               "(serialised, and travelling in argv). ours.swift: "
               "Program.spawn with the same tree from Swift. "
               "posix_spawn: glibc's, with one adddup2 action a descriptor and "
               "addclosefrom_np, built for each launch. python: "
               "subprocess.Popen with pass_fds (it cannot renumber: it passes "
               "its own k descriptors at their numbers), timed in Python. "
               "foundation: Process, standard input, output and error only. "
               "These rows run one after another, each in its own process, "
               "so the machine's drift between them shows in their ratios; "
               "the targets above are judged on the paired rows, which time "
               "the launchers in turn in every iteration.",
               "", launch]
    if len(sys.argv) > 3 and os.path.exists(sys.argv[3]):
        md += ["### Launch, interleaved harness (benchmarks/interleaved/run.sh)", "",
               "The floor, ours (given argv[0]), prebuilt posix_spawn, ours "
               "naming argv[0] itself and the fresh floor (the floor done our "
               "way: the files sent through a socket, the child's table "
               "unshared and filled with them, no checks), in turn, "
               "round after round, in one C process; sources in descending "
               "and in random order; medians.",
               "", "```", open(sys.argv[3]).read().strip(), "```", ""]
    text = "\n".join(md) + "\n"
    with open(os.path.join(HERE, "results.md"), "w") as f:
        f.write(text)
    svg_plot(r, [("random permutation", "random"),
                 ("identity", "identity")], os.path.join(HERE, "scaling.svg"))
    readme = os.path.join(HERE, "RESULTS.md")
    if os.path.exists(readme):
        doc = open(readme).read()
        b, e = "<!-- results:begin -->", "<!-- results:end -->"
        if b in doc and e in doc:
            doc = doc[:doc.index(b) + len(b)] + "\n" + text + doc[doc.index(e):]
            with open(readme, "w") as f:
                f.write(doc)
    print(text)


if __name__ == "__main__":
    main()
