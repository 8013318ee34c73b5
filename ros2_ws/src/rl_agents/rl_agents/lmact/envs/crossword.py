"""A mini crossword: fill category clues ("a fruit (5 letters)") into a grid of crossing words.

Puzzles are generated from the seed: `n_words` words of the word bank (wordbank.py) are placed
crossing each other (crossword rules: no two parallel words touch), numbered in reading order.
A clue names only the word's category and length, so the crossings decide between candidates;
when they do not make the answer unique, letters of the solution are revealed in the grid (as
printed puzzles give hints) until exactly one filling of the word bank fits.

Actions: "<number><A|D> <WORD>" with a word of the bank of the slot's length (e.g. "3D PEAR"); it
writes the word into the slot, over any letters there. Reward: the change in the number of
correctly filled slots, divided by n_words (return 1 when solved). The episode ends when the grid
is solved or after 2 * n_words actions. The expert is a constraint solver that sees only what the
model sees (clues, lengths, revealed letters, the word bank), then fills the slots in order.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import NamedTuple

from ..actions import DiscreteActions
from ..env import Env
from .wordbank import CATEGORIES, CATEGORY_OF, WORDS

ACROSS, DOWN = (0, 1), (1, 0)
_SPELLING = re.compile(r"^(\d+)\s*(a|across|d|down)\b\s*[:=-]?\s*([a-z]+)$", re.IGNORECASE)


@dataclass(frozen=True)
class Slot:
    id: str  # "1A", "2D"
    clue: str  # the category, e.g. "a fruit"
    cells: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class Puzzle:
    shape: tuple[int, int]  # rows, columns
    slots: tuple[Slot, ...]
    revealed: tuple[tuple[tuple[int, int], str], ...]  # ((cell, letter), ...) given in the grid
    answer: tuple[str, ...]  # the solution, slot by slot (hidden from the model and the expert)


class CrosswordObs(NamedTuple):
    puzzle: Puzzle
    grid: tuple[str, ...]  # rows: '#' block, '_' empty, letters


def solve(puzzle: Puzzle, limit: int = 2) -> list[tuple[str, ...]]:
    """Up to `limit` fillings of the slots with distinct bank words that match the clues, the
    lengths, the crossings and the revealed letters (backtracking, most constrained slot first)."""
    given = dict(puzzle.revealed)
    candidates = []
    for s in puzzle.slots:
        words = [w for w in CATEGORIES[s.clue] if len(w) == len(s.cells)
                 and all(given.get(cell, ch) == ch for cell, ch in zip(s.cells, w))]
        candidates.append(words)
    order = sorted(range(len(puzzle.slots)), key=lambda i: len(candidates[i]))
    found: list[tuple[str, ...]] = []
    chosen: dict[int, str] = {}
    letters: dict[tuple[int, int], str] = {}

    def search(depth: int) -> None:
        if len(found) >= limit:
            return
        if depth == len(order):
            found.append(tuple(chosen[i] for i in range(len(puzzle.slots))))
            return
        i = order[depth]
        cells = puzzle.slots[i].cells
        for w in candidates[i]:
            if w in chosen.values() or any(letters.get(c, ch) != ch for c, ch in zip(cells, w)):
                continue
            added = [c for c in cells if c not in letters]
            chosen[i] = w
            letters.update((c, ch) for c, ch in zip(cells, w) if c in added)
            search(depth + 1)
            del chosen[i]
            for c in added:
                del letters[c]

    search(0)
    return found


def _place(rng: random.Random, n_words: int, max_side: int) -> list[tuple[str, tuple[int, int], tuple[int, int]]] | None:
    """Words, start cells and directions of a crossing layout, or None when it got stuck."""
    first = rng.choice([w for w in WORDS if len(w) >= 4])
    placed = [(first, (0, 0), ACROSS)]
    letters = {(0, k): ch for k, ch in enumerate(first)}
    dirs = {(0, k): {ACROSS} for k in range(len(first))}
    for _ in range(300):
        if len(placed) == n_words:
            return placed
        word = rng.choice(WORDS)
        if any(word == p[0] for p in placed):
            continue
        options = []
        for (r, c), ch in letters.items():
            for k in (k for k, wc in enumerate(word) if wc == ch):
                d = DOWN if ACROSS in dirs[(r, c)] else ACROSS
                start = (r - k * d[0], c - k * d[1])
                if _fits(word, start, d, letters, dirs, max_side):
                    options.append((start, d))
        if options:
            start, d = rng.choice(sorted(options))
            placed.append((word, start, d))
            for k, ch in enumerate(word):
                cell = (start[0] + k * d[0], start[1] + k * d[1])
                letters[cell] = ch
                dirs.setdefault(cell, set()).add(d)
    return None


def _fits(word, start, d, letters, dirs, max_side) -> bool:
    side = (d[1], d[0])
    cells = [(start[0] + k * d[0], start[1] + k * d[1]) for k in range(len(word))]
    before, after = (start[0] - d[0], start[1] - d[1]), (cells[-1][0] + d[0], cells[-1][1] + d[1])
    if before in letters or after in letters:
        return False
    for cell, ch in zip(cells, word):
        if cell in letters:
            if letters[cell] != ch or d in dirs[cell]:
                return False
        elif any((cell[0] + s * side[0], cell[1] + s * side[1]) in letters for s in (-1, 1)):
            return False  # would touch a parallel word
    rows = [r for r, _ in letters] + [r for r, _ in cells]
    cols = [c for _, c in letters] + [c for _, c in cells]
    return max(rows) - min(rows) < max_side and max(cols) - min(cols) < max_side


def generate(seed: int, n_words: int = 4, max_side: int = 9) -> Puzzle:
    """The puzzle of `seed` (deterministic)."""
    rng = random.Random(seed)
    while (layout := _place(rng, n_words, max_side)) is None:
        pass
    r0 = min(s[0] for _, s, _ in layout)
    c0 = min(s[1] for _, s, _ in layout)
    entries = []  # (start, direction, word, cells) in grid coordinates
    for word, (r, c), d in layout:
        cells = tuple((r - r0 + k * d[0], c - c0 + k * d[1]) for k in range(len(word)))
        entries.append((cells[0], d, word, cells))
    shape = (max(cell[0] for e in entries for cell in e[3]) + 1, max(cell[1] for e in entries for cell in e[3]) + 1)
    starts = sorted({e[0] for e in entries})
    number = {cell: i + 1 for i, cell in enumerate(starts)}
    entries.sort(key=lambda e: (e[1] == DOWN, number[e[0]]))  # across first, then down, by number
    slots = tuple(Slot(f"{number[e[0]]}{'A' if e[1] == ACROSS else 'D'}", CATEGORY_OF[e[2]], e[3]) for e in entries)
    answer = tuple(e[2] for e in entries)
    solution = {cell: ch for s, w in zip(slots, answer) for cell, ch in zip(s.cells, w)}
    revealed: dict[tuple[int, int], str] = {}
    while True:
        puzzle = Puzzle(shape, slots, tuple(sorted(revealed.items())), answer)
        fillings = solve(puzzle, limit=50)
        if len(fillings) == 1:
            return puzzle
        differing = sorted({cell for f in fillings for s, w in zip(slots, f) for cell, ch in zip(s.cells, w)
                            if solution[cell] != ch})
        cell = rng.choice(differing)
        revealed[cell] = solution[cell]


class Crossword(Env):
    name = "crossword"
    title = "mini crossword"
    formats = ("text",)
    _space = DiscreteActions()

    def __init__(self, n_words: int = 4, max_side: int = 9):
        self.n_words, self.max_side = n_words, max_side
        self.max_steps = 2 * n_words
        self.obs = None
        self._legal: list[str] = []

    @property
    def action_space(self):
        return self._space

    def instructions(self) -> str:
        bank = "; ".join(f"{c}: {' '.join(ws)}" for c, ws in CATEGORIES.items())
        return ("Solve a mini crossword. Each clue gives a category and the word's length; the answers are "
                "distinct words of this word list: " + bank + ". The grid shows '#' for blocks, '_' for empty "
                "cells and the letters written so far (some letters may be given). An action writes one word "
                "into one slot, replacing what is there: the slot number and A (across) or D (down), a space "
                "and the word in capitals, e.g. 1A LION.")

    def reset(self, seed: int) -> CrosswordObs:
        puzzle = generate(seed, self.n_words, self.max_side)
        rows, cols = puzzle.shape
        grid = [["#"] * cols for _ in range(rows)]
        for s in puzzle.slots:
            for r, c in s.cells:
                grid[r][c] = "_"
        for (r, c), ch in puzzle.revealed:
            grid[r][c] = ch
        self.obs = CrosswordObs(puzzle, tuple("".join(row) for row in grid))
        self._legal = [f"{s.id} {w}" for s in puzzle.slots for w in WORDS if len(w) == len(s.cells)]
        return self.obs

    def legal_actions(self) -> list[str]:
        return self._legal

    def canonical_action(self, text: str) -> str | None:
        """ "1 across: lion", "1a-lion" -> "1A LION"."""
        m = _SPELLING.match(text.strip())
        return f"{m[1]}{m[2][0].upper()} {m[3].upper()}" if m else None

    def _correct(self, grid: tuple[str, ...]) -> int:
        p = self.obs.puzzle
        return sum(all(grid[r][c] == ch for (r, c), ch in zip(s.cells, w)) for s, w in zip(p.slots, p.answer))

    def step(self, action: str):
        slot_id, word = action.split()
        slot = next(s for s in self.obs.puzzle.slots if s.id == slot_id)
        if len(word) != len(slot.cells) or word not in CATEGORY_OF:
            raise ValueError(f"illegal action {action!r}")
        before = self._correct(self.obs.grid)
        grid = [list(row) for row in self.obs.grid]
        for (r, c), ch in zip(slot.cells, word):
            grid[r][c] = ch
        self.obs = self.obs._replace(grid=tuple("".join(row) for row in grid))
        after = self._correct(self.obs.grid)
        return self.obs, (after - before) / len(self.obs.puzzle.slots), after == len(self.obs.puzzle.slots)

    @property
    def success(self) -> bool:
        return self._correct(self.obs.grid) == len(self.obs.puzzle.slots)

    def state(self) -> CrosswordObs:
        return self.obs

    def expert(self, state: CrosswordObs | None = None) -> str:
        """Solve from the clues, lengths and revealed letters, then fill the first wrong slot."""
        s = self.obs if state is None else state
        (filling,) = solve(s.puzzle, limit=1) or (None,)
        if filling is None:
            raise ValueError("the puzzle has no solution")
        for slot, word in zip(s.puzzle.slots, filling):
            if any(s.grid[r][c] != ch for (r, c), ch in zip(slot.cells, word)):
                return f"{slot.id} {word}"
        return f"{s.puzzle.slots[0].id} {filling[0]}"  # solved already: any legal action

    def render_text(self, obs: CrosswordObs) -> str:
        p = obs.puzzle
        cols = p.shape[1]
        lines = ["   " + "".join(str(c % 10) for c in range(cols))]
        lines += [f"{r:>2} {row}" for r, row in enumerate(obs.grid)]
        for title, tag in (("Across:", "A"), ("Down:", "D")):
            lines.append(title)
            lines += [f"  {s.id}: {s.clue} ({len(s.cells)} letters), from row {s.cells[0][0]} column {s.cells[0][1]}"
                      for s in p.slots if s.id.endswith(tag)]
        return "\n".join(lines)
