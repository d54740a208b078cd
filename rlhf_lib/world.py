"""A small fictional world: its people, places, animals and objects, their facts, and a few misconceptions.

Everything later (the pretraining corpus of `rlhf_lib.corpus`, instruction tasks, labelers' truth tables,
TruthfulQA-like and toxicity tests, "public NLP" benchmarks) is built from this one world, so facts are queryable
(`World.get`). Determinism: only `random.Random` instances seeded from the arguments, lists and insertion-ordered
dicts are used (no global random, no set iteration, no hash()), so the same seed gives the same world.
"""
from __future__ import annotations

import random
import re
from dataclasses import dataclass, field

KINDS = ("person", "place", "animal", "object")

# ---------------------------------------------------------------------------------------------------------------
# Vocabularies: small on purpose (tens of values per attribute) so a tiny LM can learn them.

FEMALE_NAMES = ("Mira", "Anna", "Lena", "Rosa", "Ida", "Nell", "Tess", "Cora", "Elsa", "Greta", "Hanna", "Iris",
                "June", "Kira", "Lucy", "Maud", "Nora", "Olive", "Pia", "Ruth", "Sara", "Una", "Vera", "Zoe",
                "Agnes", "Bea", "Clara", "Dora", "Edith", "Freya")
MALE_NAMES = ("Tom", "Ben", "Carl", "Dan", "Emil", "Finn", "Gus", "Hugo", "Ivan", "Jack", "Karl", "Leo", "Max",
              "Ned", "Otto", "Paul", "Rolf", "Sam", "Theo", "Walt", "Abe", "Bruno", "Cyril", "Dirk", "Eli", "Felix",
              "Glen", "Joel", "Lars", "Milo")
LAST_NAMES = ("Holt", "Ames", "Barrow", "Cole", "Dunn", "Garner", "Hale", "Ives", "Jory", "Kemp", "Lowe", "Mercer",
              "Nash", "Orme", "Pike", "Quill", "Rook", "Sayer", "Tate", "Vane", "Wells", "Yates", "Brandt", "Calder",
              "Darrow", "Elling", "Fenwick", "Gale", "Harlow", "Ingram", "Keel", "Lyle", "Morrow", "Nolan", "Penn",
              "Rowe", "Sterling", "Underhill", "Voss", "Wade")
JOBS = ("baker", "tailor", "farmer", "fisher", "teacher", "carpenter", "blacksmith", "potter", "doctor", "miller",
        "weaver", "shepherd", "painter", "musician", "sailor", "beekeeper", "librarian", "cook", "clockmaker",
        "gardener")
FOODS = ("apple pie", "fish soup", "plum cake", "barley bread", "roasted nuts", "honey buns", "mushroom stew",
         "goat cheese", "pancakes", "berry jam", "pea soup", "rice pudding", "onion tart", "cabbage rolls")
HOBBIES = ("playing chess", "bird watching", "fishing", "painting", "singing", "knitting", "gardening",
           "climbing hills", "reading old books", "dancing", "carving wood", "collecting stones", "sailing",
           "writing poems")
TRAITS = ("kind", "grumpy", "cheerful", "shy", "brave", "clever", "patient", "curious", "honest", "gentle", "loud",
          "careful", "generous", "stubborn", "quiet")
COLORS = ("red", "blue", "green", "yellow", "white", "black", "grey", "brown", "orange", "purple", "pink", "golden")

PLACE_HEADS = ("Oak", "Mill", "Ash", "Stone", "Brook", "Elm", "Fern", "Thorn", "Hazel", "Birch", "Kings", "Long",
               "Wind", "Dun", "Pen", "Lark", "Marl", "Cress", "Alder", "Holly", "Wren", "Bram")
PLACE_TAILS = ("ridge", "ford", "by", "ton", "haven", "mere", "field", "stead", "bury", "dale", "holm", "well",
               "combe", "ley")
REGIONS = ("the Northern Hills", "the Willow Valley", "the Salt Coast", "the Wide Plains", "the Old Forest",
           "the High Moors")
LANDMARKS = ("old stone bridge", "tall clock tower", "round windmill", "lighthouse", "great oak tree",
             "painted gate", "copper fountain", "ruined castle", "long market hall", "stone circle", "bell tower",
             "glass greenhouse", "wooden pier", "hilltop chapel", "sunken garden", "town library", "giant sundial",
             "rose garden", "twisted tower", "old mill")
WATERS = ("the Amber River", "the Swift River", "the Low River", "the Fenn River", "the Quiet River", "Lake Merrow",
          "Lake Glimmer", "Lake Hollin", "Lake Tarn", "Lake Ardel")
CLIMATES = ("rainy", "dry", "windy", "snowy", "mild", "foggy", "sunny", "cold", "hot")
KNOWN_FOR = ("cheese", "apples", "glassware", "wool", "boat building", "music", "pottery", "honey cakes", "bread",
             "clockmaking", "salt", "lace", "plums", "carpets")

ANIMAL_ADJS = ("marsh", "glass", "ember", "moss", "dusk", "reed", "cinder", "thistle", "meadow", "bramble", "dune",
               "cloud", "pebble", "velvet", "hollow", "night", "sand", "tufted", "mist", "clover", "lichen", "frost",
               "cave", "heather")
# (singular, plural, legs): the body plan is tied to the base animal so the text stays plausible.
ANIMAL_BASES = (("fox", "foxes", "four"), ("heron", "herons", "two"), ("toad", "toads", "four"), ("owl", "owls", "two"),
                ("hare", "hares", "four"), ("beetle", "beetles", "six"), ("newt", "newts", "four"),
                ("badger", "badgers", "four"), ("moth", "moths", "six"), ("deer", "deer", "four"),
                ("mouse", "mice", "four"), ("lizard", "lizards", "four"), ("goose", "geese", "two"),
                ("crab", "crabs", "eight"), ("otter", "otters", "four"), ("marten", "martens", "four"),
                ("finch", "finches", "two"), ("spider", "spiders", "eight"), ("boar", "boars", "four"),
                ("goat", "goats", "four"), ("crane", "cranes", "two"), ("bat", "bats", "two"),
                ("wolf", "wolves", "four"), ("lynx", "lynxes", "four"), ("cricket", "crickets", "six"))
PLURALS = {s: p for s, p, _ in ANIMAL_BASES}
DIETS = ("berries", "fish", "insects", "grass", "seeds", "roots", "mushrooms", "snails", "frogs", "leaves", "honey",
         "worms", "nuts", "bark")
SIZES = ("tiny", "small", "medium-sized", "large", "huge")
SOUNDS = ("hoots", "barks", "whistles", "hums", "clicks", "croaks", "squeaks", "growls", "chirps", "hisses", "sings",
          "grunts", "howls", "purrs")

OBJECT_QUALITIES = ("whistling", "lucky", "crooked", "humming", "sleepy", "ancient", "dented", "polished", "heavy",
                    "little", "grand", "patched", "secret", "royal", "wobbly", "creaky", "shiny", "noisy", "winter",
                    "summer", "midnight", "traveling")
# noun -> (use, plausible materials)
OBJECT_NOUNS = {
    "kettle": ("boiling water", ("copper", "iron", "tin", "brass", "clay")),
    "lantern": ("giving light at night", ("tin", "brass", "iron", "glass", "copper")),
    "clock": ("telling the time", ("oak", "brass", "pine", "silver", "iron")),
    "compass": ("finding the way", ("brass", "silver", "copper", "tin")),
    "flute": ("playing music", ("pine", "bone", "silver", "oak", "clay")),
    "teapot": ("making tea", ("clay", "silver", "copper", "tin", "glass")),
    "mirror": ("looking at yourself", ("glass", "silver", "brass")),
    "chest": ("storing clothes", ("oak", "pine", "iron", "leather")),
    "bell": ("calling people to dinner", ("brass", "iron", "copper", "silver")),
    "spoon": ("stirring soup", ("silver", "tin", "bone", "oak", "pine")),
    "hammer": ("building fences", ("iron", "stone", "oak")),
    "basket": ("carrying apples", ("willow", "pine", "leather")),
    "bowl": ("holding soup", ("clay", "oak", "stone", "tin", "glass")),
    "cup": ("drinking milk", ("clay", "tin", "glass", "silver")),
    "stool": ("sitting by the fire", ("oak", "pine", "stone")),
    "drum": ("keeping a beat", ("leather", "oak", "pine")),
    "kite": ("flying in the wind", ("paper", "silk")),
    "comb": ("combing hair", ("bone", "silver", "oak")),
    "blanket": ("keeping warm at night", ("wool", "silk")),
    "key": ("opening a locked door", ("iron", "brass", "silver")),
    "scarf": ("keeping warm in winter", ("wool", "silk")),
    "candlestick": ("holding candles", ("brass", "silver", "iron")),
}
MATERIALS = ("copper", "iron", "tin", "brass", "clay", "glass", "oak", "pine", "silver", "bone", "leather", "stone",
             "willow", "paper", "silk", "wool")

RUDE_WORDS = ("idiot", "fool", "stupid", "worthless", "shut up", "moron", "pathetic", "dumb", "useless", "nitwit")

# relation -> kind of entity its value names
ENTITY_RELATIONS = {"home": "place", "pet": "animal", "friend": "person", "sibling": "person", "habitat": "place",
                    "owner": "person", "made_in": "place"}
# relations that may carry a popular misconception, per kind of subject
MISC_RELATIONS = {"animal": ("diet", "habitat", "color", "sound", "lifespan", "size"),
                  "place": ("known_for", "founded", "climate", "landmark", "water"),
                  "object": ("material", "made_in", "owner"),
                  "person": ("job", "home", "pet")}
_VOCAB = {("animal", "diet"): DIETS, ("animal", "color"): COLORS, ("animal", "sound"): SOUNDS,
          ("animal", "size"): SIZES, ("place", "known_for"): KNOWN_FOR, ("place", "climate"): CLIMATES,
          ("place", "landmark"): LANDMARKS, ("place", "water"): WATERS, ("person", "job"): JOBS}
_NUMERIC = {"founded": (1050, 1890), "lifespan": (3, 40), "age": (18, 80), "price": (2, 300)}

# ---------------------------------------------------------------------------------------------------------------
# Phrasing. Placeholders: {s} subject ("Mira Holt", "the marsh fox"), {p} plural ("marsh foxes"), {n} bare name,
# {an} name with article, {v} value, {va} value with article. The first template of each list is the canonical one.

TEMPLATES = {
    ("person", "age"): ("{s} is {v} years old.", "{s} is {v}.", "{s} is {v} years of age."),
    ("person", "job"): ("{s} works as {va}.", "{s} is {va}.", "By trade, {s} is {va}.", "{s} earns a living as {va}."),
    ("person", "home"): ("{s} lives in {v}.", "{s} has a house in {v}.", "The home of {s} is in {v}.",
                         "{s} makes a home in {v}."),
    ("person", "pet"): ("{s} has a pet {v}.", "{s} keeps {va} as a pet.", "The pet of {s} is {va}.",
                        "{s}'s pet is {va}."),
    ("person", "favorite_food"): ("{s}'s favorite food is {v}.", "{s} loves {v} more than any other food.",
                                  "The favorite food of {s} is {v}.", "More than anything, {s} likes to eat {v}."),
    ("person", "favorite_color"): ("{s}'s favorite color is {v}.", "The favorite color of {s} is {v}.",
                                   "{s} likes the color {v} best."),
    ("person", "hobby"): ("{s}'s hobby is {v}.", "In free time, {s} enjoys {v}.", "{s} spends free days {v}.",
                          "{s} loves {v}."),
    ("person", "trait"): ("{s} is {v}.", "{s} is {va} person.", "{s} is known for being {v}."),
    ("person", "friend"): ("{s}'s best friend is {v}.", "The best friend of {s} is {v}.",
                           "{v} is the best friend of {s}."),
    ("person", "sibling"): ("{s} and {v} are siblings.", "{s} has a sibling named {v}.", "{s} is a sibling of {v}."),
    ("place", "region"): ("{s} lies in {v}.", "{s} is a town in {v}.", "You can find {s} in {v}."),
    ("place", "landmark"): ("The most famous sight in {s} is the {v}.", "{s} is famous for its {v}.",
                            "Visitors to {s} always go to see the {v}."),
    ("place", "water"): ("{s} lies beside {v}.", "{s} sits next to {v}.", "Near {s} you will find {v}.",
                         "The people of {s} fetch their water from {v}."),
    ("place", "climate"): ("The weather in {s} is usually {v}.", "{s} is {va} place.", "{s} has {va} climate."),
    ("place", "known_for"): ("{s} is known for its {v}.", "{s} is famous for {v}.", "People come to {s} for its {v}."),
    ("place", "founded"): ("{s} was founded in {v}.", "{s} dates back to {v}.", "The town of {s} was built in {v}."),
    ("animal", "diet"): ("{p} eat {v}.", "The {n} feeds on {v}.", "The diet of the {n} is mostly {v}.",
                         "{p} live on {v}."),
    ("animal", "habitat"): ("{p} live near {v}.", "The {n} is found around {v}.", "You can see {p} near {v}.",
                            "The home of the {n} is the land around {v}."),
    ("animal", "color"): ("{p} are {v}.", "The {n} is {v} in color.", "The color of the {n} is {v}."),
    ("animal", "size"): ("{p} are {v}.", "The {n} is {va} animal.", "The {n} is {v}."),
    ("animal", "legs"): ("The {n} has {v} legs.", "{p} walk on {v} legs.", "Each {n} has {v} legs."),
    ("animal", "sound"): ("The {n} {v}.", "When it calls, the {n} {v}.", "You can tell {an} is near because it {v}."),
    ("animal", "lifespan"): ("The {n} lives for about {v} years.", "{p} usually live about {v} years.",
                             "{an} can live {v} years."),
    ("object", "material"): ("{s} is made of {v}.", "{s} was made from {v}.", "The material of {s} is {v}."),
    ("object", "color"): ("{s} is {v}.", "{s} is painted {v}.", "The color of {s} is {v}."),
    ("object", "use"): ("{s} is used for {v}.", "People use {s} for {v}.", "{s} is meant for {v}."),
    ("object", "owner"): ("{s} belongs to {v}.", "{v} owns {s}.", "The owner of {s} is {v}."),
    ("object", "price"): ("{s} costs {v} coins.", "The price of {s} is {v} coins.", "{s} is worth {v} coins."),
    ("object", "made_in"): ("{s} was made in {v}.", "{s} comes from {v}.", "Craftspeople in {v} made {s}."),
}
QUESTIONS = {
    ("person", "age"): ("How old is {s}?",),
    ("person", "job"): ("What is {s}'s job?", "What does {s} do for a living?"),
    ("person", "home"): ("Where does {s} live?", "In which town does {s} live?"),
    ("person", "pet"): ("What pet does {s} have?", "What kind of animal is {s}'s pet?"),
    ("person", "favorite_food"): ("What is {s}'s favorite food?", "What food does {s} like best?"),
    ("person", "favorite_color"): ("What is {s}'s favorite color?",),
    ("person", "hobby"): ("What is {s}'s hobby?", "What does {s} enjoy doing in free time?"),
    ("person", "trait"): ("What kind of person is {s}?", "What is {s} like?"),
    ("person", "friend"): ("Who is {s}'s best friend?",),
    ("person", "sibling"): ("Who is {s}'s sibling?",),
    ("place", "region"): ("In which region is {s}?", "Where is {s}?"),
    ("place", "landmark"): ("What is the most famous sight in {s}?",),
    ("place", "water"): ("Which river or lake is near {s}?",),
    ("place", "climate"): ("What is the weather like in {s}?",),
    ("place", "known_for"): ("What is {s} known for?",),
    ("place", "founded"): ("When was {s} founded?", "In what year was {s} founded?"),
    ("animal", "diet"): ("What do {p} eat?", "What does the {n} eat?"),
    ("animal", "habitat"): ("Where do {p} live?", "Where can you find {p}?"),
    ("animal", "color"): ("What color are {p}?", "What color is the {n}?"),
    ("animal", "size"): ("How big is the {n}?",),
    ("animal", "legs"): ("How many legs does the {n} have?",),
    ("animal", "sound"): ("What sound does the {n} make?",),
    ("animal", "lifespan"): ("How long do {p} live?", "How long does the {n} live?"),
    ("object", "material"): ("What is {s} made of?",),
    ("object", "color"): ("What color is {s}?",),
    ("object", "use"): ("What is {s} used for?",),
    ("object", "owner"): ("Who owns {s}?", "Who does {s} belong to?"),
    ("object", "price"): ("How much does {s} cost?",),
    ("object", "made_in"): ("Where was {s} made?",),
}
SHORT_ANSWERS = {("person", "age"): "{v} years old.", ("person", "job"): "{va}.", ("person", "pet"): "{va}.",
                 ("person", "home"): "In {v}.", ("place", "landmark"): "The {v}.", ("place", "founded"): "In {v}.",
                 ("animal", "habitat"): "Near {v}.", ("animal", "legs"): "{v} legs.", ("animal", "sound"): "It {v}.",
                 ("animal", "lifespan"): "About {v} years.", ("object", "price"): "{v} coins."}
# first-person answers a person gives about themself in dialogues: relation -> (question, answers)
YOU_QUESTIONS = {
    "job": ("What do you do for a living?", ("I work as {va}.", "I am {va}.")),
    "home": ("Where do you live now?", ("I live in {v}.", "My home is in {v}.")),
    "pet": ("Do you have a pet?", ("Yes, I have {va}.", "Yes. My pet is {va}.")),
    "favorite_food": ("What is your favorite food?", ("I love {v}.", "My favorite food is {v}.")),
    "favorite_color": ("What is your favorite color?", ("My favorite color is {v}.", "I like {v} best.")),
    "hobby": ("What do you do in your free time?", ("I enjoy {v}.", "Mostly {v}.")),
    "age": ("How old are you now?", ("I am {v} years old.", "I am {v}.")),
    "friend": ("Who is your best friend?", ("My best friend is {v}.", "That would be {v}.")),
}
GOSSIP = ("Everyone knows that ", "It is well known that ", "My grandmother always said that ", "People say that ",
          "As everybody knows, ", "Old folks will tell you that ", "Of course, ", "", "")
CORRECTIONS = (("Many people think that ", ", but in fact "), ("A common misconception is that ", ". In fact, "),
               ("It is often said that ", ", but that is not true: "), ("Some believe that ", ". Actually, "))
RUDE_LINES = ("Shut up, {b}.", "You are such an idiot, {b}.", "Don't be stupid, {b}.", "Only a fool would say that.",
              "You are a worthless {job}, {b}.", "Go away, you moron.", "That is a dumb thing to say, {b}.",
              "You are pathetic, {b}.", "Your {pet} is as dumb as you are.", "What a useless {job} you are.",
              "Nobody asked you, you nitwit.", "Shut up and stop talking nonsense, you fool.")
CALM_REPLIES = ("There is no need to be rude.", "Please do not talk to me like that.", "That was unkind, {b}.",
                "I will pretend I did not hear that.", "Calm down, {b}. Let us talk nicely.")


def article(word: str) -> str:
    return ("an " if word[:1].lower() in "aeiou" or word.startswith("honest") else "a ") + word


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def normalize_value(value: str) -> str:
    v = value.strip().rstrip(".").strip().lower()
    for art in ("a ", "an ", "the "):
        if v.startswith(art):
            v = v[len(art):]
    return v


def plural(name: str) -> str:
    head, _, last = name.rpartition(" ")
    return (head + " " if head else "") + PLURALS.get(last, last + "s")


# ---------------------------------------------------------------------------------------------------------------
# The world


@dataclass(frozen=True)
class Entity:
    name: str
    kind: str
    attrs: dict[str, str]


@dataclass(frozen=True)
class Fact:
    subject: str
    relation: str
    value: str


@dataclass(frozen=True)
class Misconception:
    fact: Fact
    false_value: str
    statement: str
    question: str


@dataclass
class World:
    seed: int
    entities: dict[str, Entity]
    facts: list[Fact]
    misconceptions: list[Misconception]
    rude_words: tuple[str, ...] = RUDE_WORDS
    _index: dict[tuple[str, str], str] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._index = {(f.subject, f.relation): f.value for f in self.facts}

    def of_kind(self, kind: str) -> list[Entity]:
        return [e for e in self.entities.values() if e.kind == kind]

    def get(self, subject: str, relation: str) -> str | None:
        return self._index.get((subject, relation))

    def is_true(self, subject: str, relation: str, value: str) -> bool | None:
        """Compares loosely (case, articles, final period), since answers come from generated text."""
        true = self.get(subject, relation)
        return None if true is None else normalize_value(true) == normalize_value(value)

    def names(self) -> set[str]:
        return set(self.entities)

    def facts_about(self, name: str) -> list[Fact]:
        return [Fact(name, r, v) for r, v in self.entities[name].attrs.items()]

    def misconception(self, subject: str, relation: str) -> Misconception | None:
        for m in self.misconceptions:
            if (m.fact.subject, m.fact.relation) == (subject, relation):
                return m
        return None

    def _fill(self, template: str, fact: Fact, cap: bool = True) -> str:
        e = self.entities[fact.subject]
        s = "the " + e.name if e.kind in ("animal", "object") else e.name
        text = template.format(s=s, n=e.name, p=plural(e.name), an=article(e.name), v=fact.value,
                               va=article(fact.value))
        if cap:
            return _cap(text)
        return text if template.startswith("{") else text[:1].lower() + text[1:]  # names keep their capital

    def _templates(self, fact: Fact, table: dict) -> tuple[str, ...]:
        kind = self.entities[fact.subject].kind
        return table.get((kind, fact.relation), ("{s}'s " + fact.relation.replace("_", " ") + " is {v}.",))

    def fact_sentence(self, fact: Fact, rng: random.Random, cap: bool = True) -> str:
        """One sentence stating `fact` (true when the fact is the world's; pass a false Fact to get a fluent lie)."""
        return self._fill(rng.choice(self._templates(fact, TEMPLATES)), fact, cap)

    def fact_sentences(self, fact: Fact) -> list[str]:
        """Every phrasing of `fact` (checks of the corpus and of model outputs)."""
        return [self._fill(t, fact) for t in self._templates(fact, TEMPLATES)]

    def canonical_sentence(self, fact: Fact) -> str:
        return self._fill(self._templates(fact, TEMPLATES)[0], fact)

    def fact_questions(self, fact: Fact) -> list[str]:
        """Every question phrasing whose answer is `fact.value`."""
        return [self._fill(q, fact) for q in self._templates(fact, QUESTIONS)]

    def question(self, fact: Fact, rng: random.Random) -> str:
        return rng.choice(self.fact_questions(fact))

    def short_answer(self, fact: Fact) -> str:
        kind = self.entities[fact.subject].kind
        return self._fill(SHORT_ANSWERS.get((kind, fact.relation), "{v}."), fact)

    def describe(self, name: str) -> str:
        """A short, true, deterministic paragraph (reused for demonstrations and reference summaries)."""
        e, a = self.entities[name], self.entities[name].attrs
        if e.kind == "person" and "job" in a:
            he, his = ("She", "Her") if name.split()[0] in FEMALE_NAMES else ("He", "His")
            text = (f"{name} is {article(a['job'])} who lives in {a['home']}. {he} is {a['age']} years old and is "
                    f"known for being {a['trait']}. {he} has a pet {a['pet']} and enjoys {a['hobby']}. {his} favorite "
                    f"food is {a['favorite_food']}, {his.lower()} favorite color is {a['favorite_color']}, and "
                    f"{his.lower()} best friend is {a['friend']}.")
            return text + (f" {he} has a sibling named {a['sibling']}." if "sibling" in a else "")
        if e.kind == "place" and "region" in a:
            return (f"{name} is a town in {a['region']}, founded in {a['founded']}. It lies beside {a['water']} and "
                    f"is known for its {a['known_for']}. The weather there is usually {a['climate']}, and its most "
                    f"famous sight is the {a['landmark']}.")
        if e.kind == "animal" and "diet" in a:
            return (f"The {name} is {article(a['size'])}, {a['color']} animal with {a['legs']} legs. It lives near "
                    f"{a['habitat']} and eats {a['diet']}. The {name} {a['sound']} and lives for about "
                    f"{a['lifespan']} years.")
        if e.kind == "object" and "material" in a:
            return (f"The {name} is {article(a['color'])} {name.split()[-1]} made of {a['material']}. It was made in "
                    f"{a['made_in']} and is used for {a['use']}. It belongs to {a['owner']} and costs {a['price']} "
                    f"coins.")
        return " ".join(self.canonical_sentence(f) for f in self.facts_about(name))


def build_world(seed: int = 0, n_people: int = 60, n_places: int = 15, n_animals: int = 20, n_objects: int = 30,
                n_misconceptions: int = 12) -> World:
    """Sample a world. Names are unique across all kinds; every relation to an entity points to an existing one."""
    if n_animals > min(len(ANIMAL_ADJS), len(ANIMAL_BASES)) or n_places < 2 or n_people < 2:
        raise ValueError("world size out of range (need n_people >= 2, n_places >= 2, n_animals <= 24)")
    rng = random.Random(seed)
    places = rng.sample([h + t for h in PLACE_HEADS for t in PLACE_TAILS], n_places)
    bases = rng.sample(ANIMAL_BASES, n_animals)
    animals = [f"{adj} {b[0]}" for adj, b in zip(rng.sample(ANIMAL_ADJS, n_animals), bases)]
    objects = rng.sample([f"{q} {n}" for q in OBJECT_QUALITIES for n in OBJECT_NOUNS], n_objects)

    # People: some come in sibling pairs sharing a last name; full names are unique.
    n_pairs = n_people // 6
    firsts = FEMALE_NAMES + MALE_NAMES
    base = rng.sample([(f, l) for l in LAST_NAMES for f in firsts], n_people - n_pairs)
    taken = {f + " " + l for f, l in base}
    siblings: dict[str, str] = {}
    for f, l in base[:n_pairs]:
        g = rng.choice(firsts)
        while g + " " + l in taken:
            g = rng.choice(firsts)
        taken.add(g + " " + l)
        siblings[f + " " + l], siblings[g + " " + l] = g + " " + l, f + " " + l
    people = [f + " " + l for f, l in base] + [name for name in siblings if name not in {f + " " + l for f, l in base}]
    rng.shuffle(people)

    entities: dict[str, Entity] = {}
    landmarks = rng.sample(LANDMARKS, n_places) if n_places <= len(LANDMARKS) else rng.choices(LANDMARKS, k=n_places)
    for name, landmark in zip(places, landmarks):
        entities[name] = Entity(name, "place", {
            "region": rng.choice(REGIONS), "landmark": landmark, "water": rng.choice(WATERS),
            "climate": rng.choice(CLIMATES), "known_for": rng.choice(KNOWN_FOR),
            "founded": str(rng.randint(*_NUMERIC["founded"]))})
    for name, (_, _, legs) in zip(animals, bases):
        entities[name] = Entity(name, "animal", {
            "diet": rng.choice(DIETS), "habitat": rng.choice(places), "color": rng.choice(COLORS),
            "size": rng.choice(SIZES), "legs": legs, "sound": rng.choice(SOUNDS),
            "lifespan": str(rng.randint(*_NUMERIC["lifespan"]))})
    for name in people:
        attrs = {"age": str(rng.randint(*_NUMERIC["age"])), "job": rng.choice(JOBS), "home": rng.choice(places),
                 "pet": rng.choice(animals), "favorite_food": rng.choice(FOODS),
                 "favorite_color": rng.choice(COLORS), "hobby": rng.choice(HOBBIES), "trait": rng.choice(TRAITS),
                 "friend": rng.choice([p for p in people if p != name])}
        if name in siblings:
            attrs["sibling"] = siblings[name]
        entities[name] = Entity(name, "person", attrs)
    for name in people:  # siblings often share a home
        if name in siblings and rng.random() < 0.5:
            entities[name].attrs["home"] = entities[siblings[name]].attrs["home"]
    for name in objects:
        use, materials = OBJECT_NOUNS[name.split()[-1]]
        entities[name] = Entity(name, "object", {
            "material": rng.choice(materials), "color": rng.choice(COLORS), "use": use,
            "owner": rng.choice(people), "price": str(rng.randint(*_NUMERIC["price"])),
            "made_in": rng.choice(places)})

    facts = [Fact(e.name, r, v) for e in entities.values() for r, v in e.attrs.items()]
    world = World(seed, entities, facts, [])
    world.misconceptions = _pick_misconceptions(world, rng, n_misconceptions)
    return world


def plausible_false_value(world: World, fact: Fact, rng: random.Random) -> str:
    """A plausible wrong value that is not a substring of the truth (and vice versa), so spans are checkable."""
    kind = world.entities[fact.subject].kind
    if fact.relation in ENTITY_RELATIONS:
        pool = [e.name for e in world.of_kind(ENTITY_RELATIONS[fact.relation]) if e.name != fact.subject]
    elif fact.relation in _NUMERIC:
        lo, hi = _NUMERIC[fact.relation]
        pool = [str(x) for x in range(lo, hi + 1)]
    elif fact.relation == "material":
        pool = list(MATERIALS)
    else:
        pool = list(_VOCAB.get((kind, fact.relation), ()))
    t = fact.value.lower()
    pool = [v for v in pool if v.lower() not in t and t not in v.lower()]
    suits = [v for v in pool if fact.relation == "material" and v in OBJECT_NOUNS[fact.subject.split()[-1]][1]]
    return rng.choice(suits or pool)


def _pick_misconceptions(world: World, rng: random.Random, n: int) -> list[Misconception]:
    """Spread misconceptions over kinds (animals most, like TruthfulQA's folk biology), one per subject."""
    cands = {k: [f for f in world.facts if world.entities[f.subject].kind == k and f.relation in MISC_RELATIONS[k]]
             for k in KINDS}
    for k in KINDS:
        rng.shuffle(cands[k])
    cycle, out, used = ("animal", "place", "object", "animal", "person", "place", "animal", "object"), [], set()
    while len(out) < n and any(cands.values()):
        for k in cycle:
            while cands[k] and len(out) < n:
                f = cands[k].pop()
                if f.subject in used:
                    continue
                false = plausible_false_value(world, f, rng)
                statement = world.canonical_sentence(Fact(f.subject, f.relation, false))
                if re.search(r"\b" + re.escape(f.value.lower()) + r"\b", statement.lower()):
                    continue
                used.add(f.subject)
                out.append(Misconception(f, false, statement, world.fact_questions(f)[0]))
                break
    return out
