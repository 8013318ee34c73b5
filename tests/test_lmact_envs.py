"""LMAct environments: the experts are optimal (or near it), renderings have the promised shapes."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from rl_agents.lmact.demos import record_expert
from rl_agents.lmact.envs import make_env
from rl_agents.lmact.envs.crossword import generate, solve
from rl_agents.lmact.envs.gridworld import MOVES, bfs_distances
from rl_agents.lmact.envs.tictactoe import CELLS, EMPTY, TicTacToe, minimax_move, winner


# ---- tic-tac-toe -------------------------------------------------------------------------------

def _outcomes(board: tuple[str, ...], to_move: str, counts: dict) -> None:
    """Every game from `board` where X plays minimax and O plays every possible move sequence."""
    w = winner(board)
    if w is not None:
        counts[w] += 1
        return
    if to_move == "X":
        i = minimax_move(board)
        _outcomes(board[:i] + ("X",) + board[i + 1:], "O", counts)
    else:
        for i in (i for i in range(9) if board[i] == "."):
            _outcomes(board[:i] + ("O",) + board[i + 1:], "X", counts)


@pytest.mark.parametrize("first", ["X", "O"])
def test_minimax_never_loses_against_any_opponent_sequence(first):
    counts = {"X": 0, "O": 0, "draw": 0}
    _outcomes(EMPTY, first, counts)
    assert counts["O"] == 0
    assert counts["X"] > counts["draw"] > 0  # the tree is really explored: many wins, some draws


def test_minimax_takes_a_win_and_blocks_a_loss():
    env = TicTacToe()
    assert env.expert(tuple("XX.OO....")) == "c1"  # win now rather than block
    assert env.expert(tuple("X..OO....")) == "c2"  # block O's row 2


def test_tictactoe_expert_beats_the_random_opponent():
    env = make_env("tictactoe")
    eps = [record_expert(env, s) for s in range(200)]
    wins = sum(e.success for e in eps)
    assert all(e.ret >= 0 for e in eps)  # never loses
    assert wins >= 170  # 181/200 (the rest draws)
    env.reset(0)
    assert set(env.legal_actions()) <= set(CELLS)


# ---- grid world --------------------------------------------------------------------------------

def test_gridworld_expert_follows_a_shortest_path():
    env = make_env("gridworld")
    for seed in range(150):
        obs = env.reset(seed)
        d = bfs_distances(obs.walls, obs.agent)[obs.goal]
        assert env.min_dist <= d <= env.max_steps
        ep = record_expert(env, seed)
        assert len(ep) == d and ep.success
        assert ep.ret == pytest.approx(1 - d / env.max_steps)
        assert set(ep.actions) <= set(MOVES)


def test_gridworld_walls_block_and_renderings():
    env = make_env("gridworld")
    obs = env.reset(3)
    text = env.render_text(obs)
    rows = text.splitlines()
    assert len(rows) == env.size + 2 and rows[0] == "#" * (env.size + 2)
    assert text.count("A") == 1 and text.count("G") == 1
    img = env.render_rgb(obs)
    assert img.dtype == np.uint8 and img.shape == ((env.size + 2) * 8, (env.size + 2) * 8, 3)
    r, c = obs.agent
    assert tuple(img[r * 8 + 4, c * 8 + 4]) == (30, 90, 220)
    assert env.render_vector(obs).shape == (3 * (env.size + 2) ** 2,)
    # into a wall: stays
    blocked = next((m for m, (dr, dc) in MOVES.items() if obs.walls[r + dr][c + dc] == "#"), None)
    if blocked:
        assert env.step(blocked)[0].agent == (r, c)


# ---- crossword ---------------------------------------------------------------------------------

def test_crossword_puzzles_have_one_solution_and_the_expert_finds_it():
    env = make_env("crossword")
    for seed in range(60):
        p = generate(seed)
        assert solve(p, limit=5) == [p.answer]
        ep = record_expert(env, seed)
        assert ep.success and ep.ret == pytest.approx(1.0)
        # one action per slot, in order; a slot the crossings (and revealed letters) complete needs none
        wanted = [f"{s.id} {w}" for s, w in zip(p.slots, p.answer)]
        assert len(p.slots) == 4 and 3 <= len(ep) <= 4
        assert ep.actions == [a for a in wanted if a in ep.actions]


def test_crossword_rendering_and_other_spellings():
    env = make_env("crossword")
    obs = env.reset(3)
    text = env.render_text(obs)
    assert "Across:" in text and "Down:" in text
    for s in obs.puzzle.slots:
        assert f"{s.id}: {s.clue} ({len(s.cells)} letters)" in text
    slot, word = obs.puzzle.slots[0], obs.puzzle.answer[0]
    n, tag = slot.id[:-1], slot.id[-1]
    assert env.canonical_action(f"{n} {'across' if tag == 'A' else 'down'}: {word.lower()}") == f"{slot.id} {word}"
    assert env.action_space.parse(f"{slot.id.lower()} {word.lower()}", env) == f"{slot.id} {word}"
    _, reward, done = env.step(f"{slot.id} {word}")
    assert reward == pytest.approx(1 / len(obs.puzzle.slots)) and not done


# ---- chess -------------------------------------------------------------------------------------

chess = pytest.importorskip("chess")


def test_chess_builtin_expert_mates_in_one_and_takes_a_hanging_queen():
    from rl_agents.lmact.envs.chess_game import search_move

    assert search_move(chess.Board("6k1/5ppp/8/8/8/8/5PPP/3R2K1 w - - 0 1")).uci() == "d1d8"
    assert search_move(chess.Board("4k3/8/8/3q4/8/8/8/3RK3 w - - 0 1")).uci() == "d1d5"
    # does not grab a defended pawn with the queen
    assert search_move(chess.Board("4k3/8/2p5/3p4/8/8/8/3QK3 w - - 0 1")).uci() != "d1d5"


def test_chess_builtin_expert_beats_the_random_opponent():
    env = make_env("chess", expert="search", max_steps=40)
    for seed in (0, 1):
        ep = record_expert(env, seed)
        assert ep.ret == 1.0 and ep.success


def test_chess_notations_and_renderings():
    env = make_env("chess", expert="search")
    fen = env.reset(0)
    assert env.canonical_action("Nf3") == "g1f3" and "e2e4" in env.legal_actions()
    assert env.action_space.parse("Action: Nf3", env) == "g1f3"
    san = make_env("chess", notation="san", expert="search")
    san.reset(0)
    assert san.canonical_action("e2e4") == "e4" and "Nf3" in san.legal_actions()
    text = env.render_text(fen)
    assert text.splitlines()[1] == "8 r n b q k b n r" and fen in text
    img = env.render_rgb(fen)
    assert img.shape == (96, 96, 3) and img.dtype == np.uint8
    v = env.render_vector(fen)
    assert v.shape == (768,) and v.sum() == 32


@pytest.mark.skipif(shutil.which("stockfish") is None, reason="no stockfish binary on PATH")
def test_chess_stockfish_expert_mates_in_one():
    env = make_env("chess", expert="stockfish")
    try:
        assert env.expert_kind == "stockfish"
        assert env.expert("6k1/5ppp/8/8/8/8/5PPP/3R2K1 w - - 0 1") == "d1d8"
    finally:
        env.close()


def test_chess_stockfish_requested_without_binary_is_an_error():
    if shutil.which("stockfish"):
        pytest.skip("stockfish is installed")
    with pytest.raises(ValueError, match="stockfish"):
        make_env("chess", expert="stockfish")
    assert make_env("chess").expert_kind == "search"
