#!/usr/bin/env python3
"""Writes a small deterministic text dataset for the wordcount demo and benchmarks.

Files hold newline-delimited text drawn from a skewed vocabulary, with the awkward cases a
record splitter must survive: CRLF endings, a file without a final newline, an empty file,
invalid UTF-8, and one large file that --split-bytes cuts into ranges.
"""
import argparse
import os
import random

WORDS = ("the of and to in a is that for it as was with be by on not he this are or his from at which "
         "but have an they you were her she there been one all we their has would when if so no will can "
         "more out up about into them than its only other new some time could these two may then first any "
         "like now my such make over our even most after also did many before must through back years where "
         "much your way well down should because each just those people how too little state good very").split()


def line(rng):
    n = rng.randint(0, 14)
    return " ".join(rng.choice(WORDS[: rng.choice((12, 40, len(WORDS)))]) for _ in range(n))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--files", type=int, default=40)
    ap.add_argument("--lines", type=int, default=400)
    ap.add_argument("--big-mib", type=float, default=4.0)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    os.makedirs(os.path.join(args.out, "sub"), exist_ok=True)
    for i in range(args.files):
        folder = args.out if i % 3 else os.path.join(args.out, "sub")
        body = "\n".join(line(rng) for _ in range(rng.randint(1, args.lines)))
        if i % 5 == 1:
            body = body.replace("\n", "\r\n")
        if i % 7 != 2:
            body += "\n"  # some files end without a newline
        with open(os.path.join(folder, f"text-{i:04}.txt"), "wb") as f:
            f.write(body.encode())
    open(os.path.join(args.out, "empty.txt"), "wb").close()
    with open(os.path.join(args.out, "latin1.txt"), "wb") as f:
        f.write("caf\u00e9 na\u00efve caf\u00e9\n".encode("latin-1") + b"\xff\xfe bytes\n")
    target = int(args.big_mib * (1 << 20))
    with open(os.path.join(args.out, "big.txt"), "w", newline="") as f:
        written = 0
        while written < target:
            text = line(rng) + "\n"
            f.write(text)
            written += len(text)


if __name__ == "__main__":
    main()
