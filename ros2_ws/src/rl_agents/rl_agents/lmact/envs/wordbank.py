"""The crossword's word list: category clue -> words (3-6 letters, each word in one category only)."""

from __future__ import annotations

CATEGORIES: dict[str, tuple[str, ...]] = {
    "an animal": ("CAT", "DOG", "COW", "PIG", "OWL", "BEE", "ANT", "RAT", "BAT", "FOX", "LION", "BEAR", "WOLF",
                  "DEER", "FROG", "GOAT", "DUCK", "SEAL", "HORSE", "TIGER", "ZEBRA", "CAMEL", "MOUSE", "SHEEP",
                  "RABBIT", "DONKEY", "MONKEY"),
    "a fruit": ("FIG", "PEAR", "PLUM", "LIME", "KIWI", "APPLE", "MANGO", "LEMON", "GRAPE", "PEACH", "MELON",
                "GUAVA", "BANANA", "CHERRY", "ORANGE", "PAPAYA"),
    "a colour": ("RED", "TAN", "BLUE", "GOLD", "GREY", "PINK", "CYAN", "NAVY", "GREEN", "BLACK", "WHITE",
                 "BROWN", "OLIVE", "CORAL", "AMBER", "PURPLE", "YELLOW", "SILVER", "MAROON"),
    "a body part": ("ARM", "LEG", "EAR", "EYE", "TOE", "LIP", "HIP", "HAND", "FOOT", "KNEE", "NOSE", "CHIN",
                    "NECK", "HEAD", "ELBOW", "THUMB", "ANKLE", "WRIST", "MOUTH", "FINGER"),
    "a country": ("PERU", "CUBA", "IRAN", "IRAQ", "CHAD", "MALI", "OMAN", "FIJI", "CHILE", "CHINA", "INDIA",
                  "JAPAN", "EGYPT", "SPAIN", "ITALY", "KENYA", "NEPAL", "FRANCE", "BRAZIL", "CANADA", "MEXICO",
                  "NORWAY"),
    "a tool": ("SAW", "AXE", "HOE", "AWL", "RAKE", "FILE", "VICE", "DRILL", "LEVEL", "WRENCH", "HAMMER",
               "CHISEL", "SHOVEL", "PLIERS"),
    "a musical instrument": ("DRUM", "HARP", "LUTE", "OBOE", "TUBA", "FLUTE", "PIANO", "BANJO", "CELLO",
                             "ORGAN", "BUGLE", "GUITAR", "VIOLIN"),
    "a vegetable": ("PEA", "YAM", "BEAN", "BEET", "CORN", "KALE", "LEEK", "OKRA", "ONION", "CHARD", "CARROT",
                    "POTATO", "RADISH", "TURNIP", "CELERY", "SQUASH"),
    "a piece of furniture": ("BED", "COT", "DESK", "SOFA", "STOOL", "CHAIR", "TABLE", "BENCH", "COUCH",
                             "SHELF"),
    "a weather word": ("FOG", "SUN", "HAIL", "SNOW", "RAIN", "WIND", "MIST", "GALE", "STORM", "CLOUD", "SLEET",
                       "FROST"),
}

CATEGORY_OF = {w: c for c, words in CATEGORIES.items() for w in words}
WORDS = tuple(sorted(CATEGORY_OF))
assert len(WORDS) == sum(map(len, CATEGORIES.values())), "a word is in two categories"
