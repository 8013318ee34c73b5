"""Chess as White against a weak opponent (python-chess); the expert is Stockfish when a
`stockfish` binary is on PATH, else a small built-in alpha-beta search.

Observations are FEN strings (the position; the agent is always to move). Actions are moves in
UCI (default, "e2e4", "e7e8q") or SAN ("Nf3"); the other notation is accepted too. The opponent
plays uniformly random legal moves ("random") or grabs the most material ("greedy", random among
equals), seeded by the episode seed. The game ends at checkmate / stalemate / a draw by rule,
or after `max_steps` agent moves, where it is adjudicated on material: at least +5 pawns for
White (a rook) counts as a win, at most -5 as a loss, else a draw. Return: 1 win, 0.5 draw,
0 loss (at the end only); success = win.

Built-in expert ("search"): negamax alpha-beta over `search_depth` plies (default 2: a move and
the reply), captures first; evaluation = material (P1 N3 B3 R5 Q9), pawn advancement, and when a
side is ahead a mop-up term (drive the losing king to the edge, bring the winning king closer),
so it converts won material into mate instead of shuffling. Mate and stalemate are scored when a
node has no moves. It is a fallback, not an optimal player: tests check it mates in one, wins
hanging material and beats the random opponent.
"""

from __future__ import annotations

import random
import shutil

import chess
import chess.engine
import numpy as np

from ..actions import DiscreteActions
from ..env import Env

VALUES = {chess.PAWN: 100, chess.KNIGHT: 300, chess.BISHOP: 300, chess.ROOK: 500, chess.QUEEN: 900, chess.KING: 0}
MATE = 100_000
_GLYPHS = {  # 8x8 silhouettes, '#' = piece
    chess.PAWN: ["........", "........", "...##...", "..####..", "...##...", "..####..", ".######.", "........"],
    chess.KNIGHT: ["........", "..###...", ".#####..", "###.##..", "...###..", "..####..", ".######.", "........"],
    chess.BISHOP: ["...#....", "..###...", "..#.##..", "..####..", "...##...", "..####..", ".######.", "........"],
    chess.ROOK: ["........", ".#.##.#.", ".######.", "..####..", "..####..", "..####..", ".######.", "........"],
    chess.QUEEN: ["#..##..#", "#.####.#", ".######.", "..####..", "..####..", ".######.", "########", "........"],
    chess.KING: ["...##...", "..####..", "...##...", ".######.", "..####..", "..####..", ".######.", "........"],
}


def material(board: chess.Board, color: chess.Color) -> int:
    """Material of `color` minus the other side's, in centipawns."""
    total = 0
    for piece, value in VALUES.items():
        total += value * (board.pieces_mask(piece, color).bit_count() - board.pieces_mask(piece, not color).bit_count())
    return total


def evaluate(board: chess.Board) -> int:
    """Static score for the side to move (centipawns)."""
    us = board.turn
    score = material(board, us)
    for color, sign in ((us, 1), (not us, -1)):
        for sq in board.pieces(chess.PAWN, color):
            score += sign * 5 * (chess.square_rank(sq) if color == chess.WHITE else 7 - chess.square_rank(sq))
    if abs(score) > 200:  # mop-up: the side ahead wants the other king at the edge and near its own
        winner = us if score > 0 else not us
        wk, lk = board.king(winner), board.king(not winner)
        if wk is not None and lk is not None:
            edge = max(abs(3.5 - chess.square_file(lk)), abs(3.5 - chess.square_rank(lk)))
            bonus = int(20 * edge + 8 * (7 - chess.square_distance(wk, lk)))
            score += bonus if winner == us else -bonus
    return score


def _ordered(board: chess.Board) -> list[chess.Move]:
    """Legal moves, captures of the most valuable pieces first, then by UCI (deterministic)."""
    def key(m: chess.Move):
        victim = board.piece_type_at(m.to_square) or (chess.PAWN if board.is_en_passant(m) else None)
        return (-(VALUES[victim] if victim else -1) - (800 if m.promotion else 0), m.uci())
    return sorted(board.legal_moves, key=key)


def _negamax(board: chess.Board, depth: int, alpha: int, beta: int, ply: int) -> int:
    if depth == 0:
        return evaluate(board)
    moves = _ordered(board)
    if not moves:
        return -(MATE - ply) if board.is_check() else 0
    if board.is_insufficient_material() or board.halfmove_clock >= 100:
        return 0
    best = -MATE - 1
    for m in moves:
        board.push(m)
        v = -_negamax(board, depth - 1, -beta, -alpha, ply + 1)
        board.pop()
        if v > best:
            best = v
        alpha = max(alpha, v)
        if alpha >= beta:
            break
    return best


def search_move(board: chess.Board, depth: int = 2) -> chess.Move:
    """The built-in expert's move (the first best in `_ordered` order)."""
    best, best_v, alpha = None, -MATE - 1, -MATE - 1
    for m in _ordered(board):
        board.push(m)
        v = -_negamax(board, depth - 1, -MATE - 1, -alpha, 1)
        board.pop()
        if v > best_v:
            best, best_v = m, v
        alpha = max(alpha, v)
    if best is None:
        raise ValueError("no legal moves")
    return best


class ChessGame(Env):
    name = "chess"
    title = "chess"
    formats = ("text", "rgb", "vector")
    square_px = 12
    _space = DiscreteActions()

    def __init__(self, opponent: str = "random", expert: str = "auto", notation: str = "uci", max_steps: int = 40,
                 search_depth: int = 2, stockfish_depth: int = 10):
        if opponent not in ("random", "greedy"):
            raise ValueError(f"chess opponent must be random or greedy, not {opponent!r}")
        if notation not in ("uci", "san"):
            raise ValueError(f"chess notation must be uci or san, not {notation!r}")
        if expert not in ("auto", "stockfish", "search"):
            raise ValueError(f"chess expert must be auto, stockfish or search, not {expert!r}")
        path = shutil.which("stockfish")
        if expert == "stockfish" and path is None:
            raise ValueError("expert=stockfish but no `stockfish` binary is on PATH")
        self.expert_kind = "stockfish" if (expert != "search" and path) else "search"
        self._stockfish_path, self._engine = path, None
        self.opponent, self.notation, self.max_steps = opponent, notation, max_steps
        self.search_depth, self.stockfish_depth = search_depth, stockfish_depth
        self.board = chess.Board()
        self.rng = random.Random(0)
        self.moves = 0

    @property
    def action_space(self):
        return self._space

    def instructions(self) -> str:
        example = "e2e4 (or e7e8q to promote)" if self.notation == "uci" else "Nf3 (or e8=Q to promote)"
        return ("You play chess as White against an opponent playing Black; win by checkmate. The position "
                "is shown as a board (uppercase = White, lowercase = Black, '.' empty, rank 8 at the top) and "
                f"its FEN. The game is adjudicated on material after {self.max_steps} of your moves. An action "
                f"is one legal move in {self.notation.upper()} notation, e.g. {example}.")

    def reset(self, seed: int) -> str:
        self.rng = random.Random(seed)
        self.board = chess.Board()
        self.moves = 0
        return self.board.fen()

    def _name(self, move: chess.Move) -> str:
        return move.uci() if self.notation == "uci" else self.board.san(move)

    def legal_actions(self) -> list[str]:
        if self._over():
            return []
        return [self._name(m) for m in self.board.legal_moves]

    def canonical_action(self, text: str) -> str | None:
        for parse in (self.board.parse_uci, self.board.parse_san):
            try:
                return self._name(parse(text))
            except ValueError:  # python-chess's parse errors are ValueErrors
                continue
        return None

    def _over(self) -> bool:
        return self.board.is_game_over() or self.moves >= self.max_steps

    def _opponent_move(self) -> chess.Move:
        moves = sorted(self.board.legal_moves, key=chess.Move.uci)
        if self.opponent == "greedy":
            def gain(m: chess.Move) -> int:
                victim = self.board.piece_type_at(m.to_square)
                return VALUES[victim] if victim else (100 if self.board.is_en_passant(m) else 0)
            top = max(map(gain, moves))
            moves = [m for m in moves if gain(m) == top]
        return self.rng.choice(moves)

    def step(self, action: str):
        move = self.board.parse_uci(action) if self.notation == "uci" else self.board.parse_san(action)
        if self._over():
            raise ValueError("the game is over")
        self.board.push(move)
        self.moves += 1
        if not self.board.is_game_over():
            self.board.push(self._opponent_move())
        done = self._over()
        return self.board.fen(), (self.result() if done else 0.0), done

    def result(self) -> float:
        """1 White wins, 0.5 draw, 0 loss (material adjudication when the game has not ended)."""
        outcome = self.board.outcome()
        if outcome is not None:
            return {chess.WHITE: 1.0, chess.BLACK: 0.0, None: 0.5}[outcome.winner]
        m = material(self.board, chess.WHITE)
        return 1.0 if m >= 500 else 0.0 if m <= -500 else 0.5

    @property
    def success(self) -> bool:
        return self._over() and self.result() == 1.0

    def state(self) -> str:
        return self.board.fen()

    def expert(self, state: str | None = None) -> str:
        board = self.board if state is None else chess.Board(state)
        if self.expert_kind == "stockfish":
            if self._engine is None:
                self._engine = chess.engine.SimpleEngine.popen_uci(self._stockfish_path)
            move = self._engine.play(board, chess.engine.Limit(depth=self.stockfish_depth)).move
        else:
            move = search_move(board.copy(stack=False), self.search_depth)
        return move.uci() if self.notation == "uci" else board.san(move)

    def close(self) -> None:
        if self._engine is not None:
            self._engine.quit()
            self._engine = None

    def render_text(self, fen: str) -> str:
        rows = chess.Board(fen).board_fen().split("/")
        lines = ["  a b c d e f g h"]
        for i, row in enumerate(rows):
            cells = "".join("." * int(ch) if ch.isdigit() else ch for ch in row)
            lines.append(f"{8 - i} " + " ".join(cells))
        return "\n".join(lines) + f"\nFEN: {fen}"

    def render_rgb(self, fen: str) -> np.ndarray:
        board, s = chess.Board(fen), self.square_px
        img = np.zeros((8 * s, 8 * s, 3), np.uint8)
        for sq in chess.SQUARES:
            r, c = 7 - chess.square_rank(sq), chess.square_file(sq)
            view = img[r * s:(r + 1) * s, c * s:(c + 1) * s]
            view[:] = (240, 217, 181) if (r + c) % 2 == 0 else (181, 136, 99)
            piece = board.piece_at(sq)
            if piece:
                mask, outline = _MASKS[piece.piece_type]
                m = (s - 8) // 2
                glyph = view[m:m + 8, m:m + 8]
                glyph[outline] = (0, 0, 0) if piece.color == chess.WHITE else (200, 200, 200)
                glyph[mask] = (250, 250, 250) if piece.color == chess.WHITE else (20, 20, 20)
        return img

    def render_vector(self, fen: str) -> np.ndarray:
        """12 one-hot planes of 64 squares: White P N B R Q K, then Black."""
        board = chess.Board(fen)
        v = np.zeros((12, 64), np.float32)
        for sq, piece in board.piece_map().items():
            v[piece.piece_type - 1 + (0 if piece.color == chess.WHITE else 6), sq] = 1.0
        return v.ravel()


def _masks() -> dict[int, tuple[np.ndarray, np.ndarray]]:
    out = {}
    for piece, rows in _GLYPHS.items():
        mask = np.array([[ch == "#" for ch in row] for row in rows])
        grown = mask.copy()
        grown[1:] |= mask[:-1]
        grown[:-1] |= mask[1:]
        grown[:, 1:] |= mask[:, :-1]
        grown[:, :-1] |= mask[:, 1:]
        out[piece] = (mask, grown & ~mask)
    return out


_MASKS = _masks()
