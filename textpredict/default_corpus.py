"""Deterministic generator of the embedded default training corpus.

The default corpus is English text written for this project (templates and word lists
below; nothing is copied from another source). It is built to teach a small LSTM language
model the phenomena that the LSTM literature uses to explain why a cell state with gates
helps: information that must be *kept* for many steps and *used* later.

Each line is one short "story" of related sentences. There are four kinds:

1. **Country → language, far apart.** "i grew up in france and moved away when i was
   young . <unrelated sentences> now i speak fluent french ." The language is predictable
   only from the country named earlier (the filler in between never depends on the
   country), at distances from 2 to about 50 words, so the model has to store the cue in
   its cell state and ignore the filler: the classic "keep a fact, forget the noise"
   example. Several countries share a language (spain, mexico, argentina → spanish), so
   the mapping is not one-to-one. Every country occurs in every story shape, including
   short general facts ("in spain people speak spanish .") from which a model learns the
   mapping itself before it learns to carry it across the gap.
2. **Subject number → verb form.** "the keys near the old cabinet by the door are ..."
   and "the dog that the neighbours feed every morning runs ...": the verb agrees with the
   head noun, never with the nearer noun of the other number (the "attractor").
3. **Subject gender → pronoun.** "my sister moved to the city last year . <filler>
   these days she ...", "peter lost his keys ." with family words and first names of
   consistent gender.
4. **Everyday collocations** with several surface forms each ("the clouds are in the sky",
   "the fish swim in the sea", "the sun rises in the east", ...). "the clouds are in the"
   is always followed by "sky", while "in the" in general is followed by dozens of
   different words, so the model must use the earlier context ("clouds") to predict it.

Filler sentences come from a large pool of templates over a vocabulary of several hundred
words, are gender-neutral, and never name a country or a language.

Trained line by line, a model sees every story whole. Trained on one stream cut into
fixed windows, it can learn a dependency only where cue and target fall into the same
window: with 48-token windows a 13-word dependency is cut in about a quarter of its
occurrences, a 40-word one in most. The proportions of story kinds and shapes
(:data:`STORY_WEIGHTS`, the weights in :data:`LANGUAGE_SHAPES`) are constants so that
they can be tuned to a training budget.

Text conventions: lower-case words separated by single spaces; every sentence ends with
" ." (the tokenizer maps a sentence-final period to ``<eos>``); commas are written " , "
and used sparingly; apostrophes occur inside words ("don't", "it's"); no other
punctuation. Every line ends with " .".

Everything is drawn from ``random.Random(seed)`` over lists (never sets, never the global
random state), so the output depends only on the seed. Train, validation and test use
different seeds, so the held-out stories are new combinations. Regenerate the committed
files with::

    python -m textpredict.default_corpus --out corpora/default

The cue → target structure is exposed for measurement: :data:`COUNTRY_LANGUAGE`,
:data:`PRONOUNS` and :func:`make_probes`, which returns :class:`Probe` examples (prompt,
expected next word, a wrong alternative, and the cue → target distance in words).
"""

from __future__ import annotations

import argparse
import random
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path


def _lines(text: str) -> tuple[str, ...]:
    """The non-blank lines of ``text``, stripped: one template or phrase a line."""
    return tuple(line.strip() for line in text.splitlines() if line.strip())


def _words(text: str) -> tuple[str, ...]:
    """Comma-separated phrases if ``text`` has a comma, else whitespace-separated words."""
    items = text.split(",") if "," in text else text.split()
    return tuple(" ".join(item.split()) for item in items if item.strip())


def _table(text: str) -> tuple[tuple[str, ...], ...]:
    """Comma-separated rows of whitespace-separated fields."""
    return tuple(tuple(row.split()) for row in _words(text))


def _groups(text: str) -> tuple[tuple[int, tuple[str, ...]], ...]:
    """Blank-line-separated paragraphs: a weight line, then one form a line."""
    groups = []
    for paragraph in re.split(r"\n\s*\n", text.strip()):
        weight, *forms = _lines(paragraph)
        groups.append((int(weight), tuple(forms)))
    return tuple(groups)


# --------------------------------------------------------------------------------------
# Sizes and seeds
# --------------------------------------------------------------------------------------

#: Approximate size of each split in words (whitespace tokens, periods and commas included).
#: Generation stops at the first story that reaches the target.
TRAIN_WORDS = 250_000
VALID_WORDS = 20_000
TEST_WORDS = 20_000

TRAIN_SEED = 1
VALID_SEED = 2
TEST_SEED = 3
#: Seed used by :func:`make_probes` by default (different from all corpus seeds).
PROBE_SEED = 4

#: Where ``main()`` writes by default (relative to the current directory).
DEFAULT_OUT = Path("corpora") / "default"

#: Relative frequency of each kind of story (one story per line).
STORY_WEIGHTS: dict[str, int] = {"language": 45, "number": 17, "gender": 17, "collocation": 21}

SPLITS: dict[str, tuple[int, int]] = {
    "train": (TRAIN_WORDS, TRAIN_SEED),
    "valid": (VALID_WORDS, VALID_SEED),
    "test": (TEST_WORDS, TEST_SEED),
}

# --------------------------------------------------------------------------------------
# Cue → target tables
# --------------------------------------------------------------------------------------

#: Country (one token, as it appears in the text) → language spoken there.
COUNTRY_LANGUAGE: dict[str, str] = {
    "france": "french",
    "spain": "spanish",
    "germany": "german",
    "italy": "italian",
    "japan": "japanese",
    "china": "chinese",
    "russia": "russian",
    "greece": "greek",
    "portugal": "portuguese",
    "brazil": "portuguese",
    "poland": "polish",
    "sweden": "swedish",
    "turkey": "turkish",
    "egypt": "arabic",
    "mexico": "spanish",
    "korea": "korean",
    "norway": "norwegian",
    "finland": "finnish",
    "hungary": "hungarian",
    "netherlands": "dutch",
    "denmark": "danish",
    "vietnam": "vietnamese",
    "thailand": "thai",
    "england": "english",
    "argentina": "spanish",
    "austria": "german",
}
COUNTRIES: tuple[str, ...] = tuple(COUNTRY_LANGUAGE)
LANGUAGES: tuple[str, ...] = tuple(dict.fromkeys(COUNTRY_LANGUAGE.values()))
# How a country is written after "in" / "from" when it needs an article.
_COUNTRY_PHRASE = {"netherlands": "the netherlands"}

#: Gender → (subject pronoun, possessive).
PRONOUNS: dict[str, tuple[str, str]] = {"female": ("she", "her"), "male": ("he", "his")}

#: Words that open the sentence that states the language (the language follows directly).
LANGUAGE_TARGETS: tuple[str, ...] = _lines(
    """
    now i speak fluent
    i speak fluent
    my first language is
    at home we spoke
    i still speak
    my mother tongue is
    i can still read and write
    i still dream in
    that is why i speak
    to this day i speak
    i still count in
    my best language is
    """
)
FLUENT_TARGET = "now i speak fluent"
MOVED_AWAY = "and moved away when i was young"

# Sentences that name the country. "{c}" is the country phrase.
_CUES: tuple[tuple[str, int], ...] = (
    ("i grew up in {c}", 4),
    ("i was born in {c}", 2),
    ("i spent my childhood in {c}", 1),
    ("my family comes from {c}", 1),
    ("my parents raised me in {c}", 1),
    ("i was raised in {c}", 1),
    ("i lived in {c} as a child", 1),
    ("i went to school in {c}", 1),
    ("as a child i lived in {c}", 1),
    ("my family lived in {c} for many years", 1),
)
# Optional endings of the cue sentence in the shapes that do not fix it.
_CUE_TAILS: tuple[str, ...] = (
    "",
    "",
    " " + MOVED_AWAY,
    " but we left when i was small",
    " until i was ten",
    " for the first years of my life",
    " before we moved",
)
# General facts; "{c}" is the country phrase, "{l}" the language, which ends the sentence.
_FACTS: tuple[str, ...] = _lines(
    """
    in {c} people speak {l}
    people in {c} speak {l}
    the language of {c} is {l}
    in {c} most people speak {l}
    if you go to {c} you will hear {l}
    in {c} the children learn {l}
    the main language in {c} is {l}
    the people of {c} speak {l}
    the newspapers in {c} are written in {l}
    """
)
# Short target phrases that can follow "<cue> so".
_SO_TARGETS: tuple[str, ...] = (
    "i speak fluent",
    "my first language is",
    "at home we spoke",
    "i speak",
    "i still speak",
    "i can read and write",
)

#: Language story shapes: name → (weight, filler range before cue, filler range after cue).
LANGUAGE_SHAPES: dict[str, tuple[int, tuple[int, int] | None, tuple[int, int] | None]] = {
    # <cue> and moved away when i was young . now i speak fluent X .
    "moved_away": (6, None, None),
    # <cue> and moved away when i was young . <filler> now i speak fluent X .
    "moved_away_filler": (4, None, (1, 28)),
    # <cue> and moved away when i was young . <filler?> <other target> X .
    "moved_away_other": (2, None, (0, 26)),
    # <cue> so <target> X .
    "same_sentence": (3, None, None),
    # <cue><tail> . <target> X .
    "next_sentence": (3, None, None),
    # <cue><tail> . <filler> <target> X .
    "filler_between": (3, None, (1, 34)),
    # <filler> <cue><tail> . <filler> <target> X .
    "filler_around": (1, (3, 16), (0, 20)),
    # <cue><tail> . <long filler> <target> X .
    "long_gap": (1, None, (28, 38)),
    # General facts, two to four to a line, with the language 2 to 7 words after the country:
    # "in spain people speak spanish ." They teach the mapping at short range, which a small
    # model learns within its first epochs and then carries over to the long-range shapes.
    "fact": (5, None, None),
}

# People for the gender stories: (phrase, gender). The cue word is the phrase's last word.
_FEMALE = _words(
    """
    my sister, my mother, my aunt, my grandmother, my daughter, my niece, my wife, my girlfriend,
    the woman next door, anna, maria, sophie, emma, lucy, sarah, julia, laura, nina, clara, helen,
    rosa, eva
    """
)
_MALE = _words(
    """
    my brother, my father, my uncle, my grandfather, my son, my nephew, my husband, my boyfriend,
    the man next door, peter, tom, david, paul, james, mark, daniel, simon, jack, lucas, oliver,
    victor, hugo
    """
)
_PEOPLE: dict[str, tuple[str, ...]] = {"female": _FEMALE, "male": _MALE}

# --------------------------------------------------------------------------------------
# Vocabulary for the templates ("{name}" slots; values may contain further slots)
# --------------------------------------------------------------------------------------

_W: dict[str, tuple[str, ...]] = {
    "place": _words(
        """
        kitchen, garden, park, station, market, library, office, school, hospital, museum, village,
        city, forest, river, harbour, bakery, church, cinema, hotel, airport, square, bridge, hill,
        field, farm, beach, shop, post office, restaurant, theatre, stadium, swimming pool, lake,
        valley, castle, tower, factory, garage, attic, cellar, town hall, playground, island,
        bookshop, bus stop, supermarket, zoo, car park, old mill, lighthouse
        """
    ),
    "obj": _words(
        """
        ball lamp chair table bag box bottle cup clock map ticket letter book camera radio bicycle
        umbrella blanket kettle pillow mirror painting basket hat coat scarf key phone computer
        wallet notebook pencil candle rope ladder bucket spoon plate jar envelope suitcase guitar
        piano violin drum kite vase toy bench tent sofa carpet fan oven desk
        """
    ),
    "objs": _words(
        """
        boxes books bottles chairs letters photos plates cups apples shoes coins keys maps pencils
        candles tickets flowers stones shells eggs
        """
    ),
    "adj": _words(
        """
        old new small big red blue green yellow heavy light cheap expensive broken shiny wooden
        strange beautiful tiny huge dusty clean dirty round soft warm empty famous simple lovely
        ugly brown black white grey pink long short orange plastic useless funny little
        """
    ),
    "state": _words(
        """
        quiet crowded empty busy closed cold warm noisy dark full open calm peaceful dirty clean
        """
    ),
    "food": _words(
        """
        bread soup rice pasta cheese apples oranges potatoes cake eggs beans carrots tomatoes
        noodles pancakes salad biscuits jam butter pears grapes plums onions mushrooms pie
        """
    ),
    "topic": _words(
        """
        history, music, science, football, art, trains, ships, volcanoes, insects, dinosaurs, money,
        gardening, chess, poetry, mathematics, the weather, the moon, old castles, space, cooking,
        bridges, the ocean, the news, the election, computers
        """
    ),
    "game": _words(
        """
        football, chess, cards, tennis, basketball, hide and seek, volleyball, table tennis,
        a board game, dominoes
        """
    ),
    "num": _words("two three four five six seven eight nine ten eleven twelve twenty"),
    "day": _words("monday tuesday wednesday thursday friday saturday sunday"),
    "month": _words(
        """
        january february march april may june july august september october november december
        """
    ),
    "time": _words(
        """
        on {day}, last week, last night, yesterday, this morning, every morning, in the evening,
        after lunch, before dinner, at night, in the afternoon, at the weekend, in winter,
        in spring, in summer, in autumn, in {month}, at noon, at midnight, the next day,
        two days ago, a few weeks later, every {day}, once a month, early in the morning,
        late at night
        """
    ),
    "weather": _words("cold warm windy sunny foggy wet hot cloudy freezing grey stormy"),
    "subj": _words(
        """
        we, they, my friends, the neighbours, the children, our teachers, the students, my cousins,
        the tourists, the workers, my parents, the guests, the farmers, the nurses, my classmates,
        the kids, our neighbours, the old couple, the twins, the players, the visitors,
        my colleagues
        """
    ),
    "vehicle": _words("bus train tram ferry taxi plane"),
    "furniture": _words("table shelf floor bed desk chair windowsill counter"),
    "meal": _words("breakfast, lunch, dinner, school, work, the concert, the match"),
    "instrument": _words("piano guitar violin drums flute trumpet cello"),
    "colour": _words("red blue green yellow white black brown grey purple"),
    "a_obj": _words("a {obj}, a {adj} {obj}, an old {obj}, a {colour} {obj}"),
    "past_vp": _words(
        """
        walked to the {place}, bought {a_obj} at the market, found {a_obj} in the {place},
        painted the {obj} {colour}, cooked {food} for dinner, ate {food} in the {place},
        waited for the {vehicle}, missed the {vehicle}, took the {vehicle} to the {place},
        read a book about {topic}, watched a film about {topic}, played {game} in the {place},
        talked about {topic}, fixed the {adj} {obj}, lost the {obj},
        carried the {obj} to the {place}, sold the {adj} {obj}, visited the {place}, left early,
        arrived late, stayed at home, slept for {num} hours, planted {food} in the garden,
        listened to the radio, looked at the {adj} {obj}, opened the {obj}, counted the {objs},
        cleaned the {place}, forgot the {obj} at the {place}, ran to the {place},
        bought {num} {objs}, learned about {topic}, borrowed {a_obj}, built a {adj} {obj},
        sat in the {place} for an hour, danced in the {place}, sang songs in the {place},
        wrote a letter about {topic}, moved the {obj} into the {place},
        looked for the {obj} everywhere
        """
    ),
    "inf_vp": _words(
        """
        visit the {place}, buy {food}, finish the book, fix the {obj}, clean the {place},
        play {game}, call the office, look for the {obj}, cook {food}, learn about {topic}
        """
    ),
}

# Filler sentences (no final period; one is added). Gender-neutral, no country, no language.
_FILLER = _lines(
    """
    {subj} {past_vp} {time}
    {subj} {past_vp}
    {subj} {past_vp} and then {past_vp}
    {time} {subj} {past_vp}
    i {past_vp} {time}
    i {past_vp}
    {time} i {past_vp}
    the {place} was {state} {time}
    the {place} was {state}
    it was {weather} {time}
    it was {weather} and the streets were {state}
    {subj} talked about {topic} for {num} hours
    the {vehicle} was late again
    there was {a_obj} on the {furniture}
    after {meal} {subj} {past_vp}
    the {obj} in the {place} was {adj}
    {subj} liked the {adj} {obj} very much
    {num} {objs} were on the {furniture}
    somebody left {a_obj} in the {place}
    the {place} near our house is {state} at night
    we often go to the {place} on {day}
    i like {food} with {food}
    my friends and i played {game} in the {place}
    {subj} forgot the {obj} at the {place}
    the price of {food} went up again
    the road to the {place} was closed for a week
    everyone was tired after {meal}
    the meeting ended at {num} o'clock
    we didn't have time to {inf_vp}
    it's a long way to the {place}
    they don't sell {food} at the {place} anymore
    nobody could find the {obj}
    the {adj} {obj} is still in the {place}
    there are {num} {objs} in the {place}
    i wanted to {inf_vp} {time}
    {subj} decided to {inf_vp}
    {subj} were {state} and hungry
    the lights in the {place} went out
    we stayed in a {adj} hotel near the {place}
    the {place} opens at {num} on {day}
    the walk to the {place} took {num} minutes
    i think the {obj} is in the {place}
    the {adj} {obj} cost {num} euros
    {subj} had {food} and {food} for lunch
    we saw a {adj} dog near the {place}
    i never liked {topic} at school
    {subj} were late for {meal}
    somebody was playing the {instrument} in the {place}
    the {place} was full of {objs}
    i don't remember the name of the {place}
    we talked for a long time
    it took {num} days to {inf_vp}
    {subj} laughed at the {adj} {obj}
    the {obj} fell off the {furniture}
    we met some friends at the {place}
    the {place} smelled of {food}
    nobody wanted to {inf_vp}
    """
)
# Very short fillers used to fill the last few words of a gap.
_SHORT_FILLER = _lines(
    """
    we waited
    it was late
    nobody answered
    time passed
    everyone laughed
    it rained
    we agreed
    things changed
    life went on
    years passed
    it got dark
    we went home
    nothing happened
    we slept
    """
)

# --------------------------------------------------------------------------------------
# Collocations: (weight, forms). "{pp}"/"{poss}" is a random consistent pronoun pair.
# --------------------------------------------------------------------------------------

_COLLOCATIONS = _groups(
    """
    6
    the clouds are in the sky
    the clouds are in the sky
    the white clouds are in the sky
    look , the clouds are in the sky today
    the clouds are in the sky again
    today the clouds are in the sky
    the grey clouds are in the sky
    all morning the clouds are in the sky
    in winter the clouds are in the sky all day
    the clouds are in the sky above the {place}
    when it rains the clouds are in the sky
    i can see that the clouds are in the sky
    the clouds are in the sky and the wind is cold
    the dark clouds are in the sky
    the big clouds are in the sky tonight
    the little clouds are in the sky

    3
    the birds fly across the sky
    the birds fly high in the sky
    a plane flies across the blue sky
    the moon is high in the sky
    the sun is low in the sky
    the stars are in the sky at night
    there are no clouds in the sky today
    the sky is blue today
    the sky is grey and it looks like rain
    the kite is high up in the sky
    the clouds move slowly across the sky
    a rainbow appeared in the sky

    2
    the fish swim in the sea
    fish swim in the river
    the fish live in the sea
    the little fish swim in the pond
    whales swim in the ocean
    the boats sail on the sea
    the fish swim in the sea near the rocks

    2
    {pp} drinks {poss} coffee with milk
    {pp} likes {poss} coffee with milk and sugar
    i drink my coffee with milk
    we drink our tea with lemon
    {pp} always takes {poss} tea with honey
    every morning {pp} drinks {poss} coffee with milk

    2
    {pp} brushes {poss} teeth every morning
    {pp} brushes {poss} teeth before bed
    i brush my teeth after breakfast
    the children brush their teeth before they go to sleep
    don't forget to brush your teeth

    2
    the sun rises in the east
    the sun sets in the west
    every morning the sun rises in the east
    the sun comes up in the east and goes down in the west
    in the evening the sun sets in the west

    2
    it is raining so take an umbrella
    take an umbrella because it is raining
    it's raining , don't forget your umbrella
    it looks like rain so bring an umbrella
    when it rains we open our umbrellas
    it is raining so {pp} takes {poss} umbrella

    1
    it is cold outside so wear a warm coat
    wear your coat because it is cold
    in winter we wear gloves and scarves
    it is snowing so put on your boots

    2
    the leaves fall from the trees in autumn
    in autumn the leaves turn brown
    flowers bloom in spring
    in spring the trees turn green
    it is hot in summer
    snow falls in winter
    in winter the lake freezes

    1
    the bees make honey
    bees fly from flower to flower
    the bees live in a hive

    1
    cows give milk
    the cows eat grass in the field
    the farmer milks the cows every morning
    the cows are in the field

    1
    we eat breakfast in the morning
    we have lunch at noon
    we have dinner in the evening
    every morning we eat breakfast in the kitchen

    1
    we sleep at night
    the baby sleeps in the cradle
    i go to bed when i am tired
    {pp} is tired so {pp} goes to bed early

    1
    {pp} is hungry so {pp} eats an apple
    i am hungry , let's make a sandwich
    when the children are hungry they eat bread and cheese

    1
    the moon shines at night
    the stars come out at night
    owls hunt at night
    it is dark at night

    1
    the milk is in the fridge
    put the butter in the fridge
    the cheese is in the fridge
    keep the milk cold in the fridge

    1
    the plates are in the cupboard
    the cups are in the cupboard
    put the glasses back in the cupboard

    2
    the children are in the garden
    the children play in the garden
    the kids are in the garden with the dog
    the books are in the bag
    the keys are in the drawer
    the horses are in the stable
    the cars are in the garage
    the students are in the classroom
    the tourists are in the museum
    the shoes are in the hall

    1
    the boats are in the harbour
    the ships sail across the ocean
    the fishing boats come back in the evening

    1
    the plane lands at the airport
    we wait for our flight at the airport
    the plane takes off from the airport

    1
    the train leaves from the station
    we wait for the train on the platform
    the train arrives at the station at noon

    1
    we buy bread at the bakery
    the baker bakes bread every morning
    fresh bread smells good

    1
    the doctor works in a hospital
    the nurses work in the hospital
    when you are sick you see a doctor

    1
    the teacher works at the school
    the students learn in the classroom
    the teacher writes on the board

    1
    the farmer grows wheat
    the farmer works in the field
    the farmer feeds the chickens

    1
    the library is full of books
    we borrow books from the library
    it is quiet in the library

    1
    we cook in the kitchen
    the kettle is boiling so make some tea
    the soup is hot so wait a minute

    1
    we cut the bread with a knife
    we eat soup with a spoon
    {pp} eats rice with chopsticks
    i write with a pen

    1
    {pp} locks the door with a key
    open the door with the key
    the keys are in my pocket
    i put the keys on the table

    1
    the phone is ringing so answer it
    the phone is ringing , can you get it

    1
    water boils at one hundred degrees
    ice melts in the sun
    water freezes when it is cold

    1
    the river flows into the sea
    the river runs through the valley
    there is a bridge over the river

    1
    the birds build nests in the trees
    the birds sing in the morning
    the birds sit on the roof

    1
    the grass is green
    the snow is white
    the sea is blue
    lemons are yellow and sour
    sugar is sweet

    1
    the dog barks at strangers
    the cat sleeps on the sofa
    the cat chases the mouse
    the dog wags its tail

    1
    wash your hands with soap and water
    {pp} washes {poss} hands before dinner

    1
    a week has seven days
    a year has twelve months
    monday comes after sunday
    december is the last month of the year

    1
    the shop opens at nine
    school starts at eight
    the bank closes at five

    1
    {pp} reads the newspaper every morning
    i read a book before bed
    we listen to music in the car

    1
    the wind blows the leaves off the trees
    the wind is strong today
    the wind is blowing from the north

    1
    fire is hot
    the fire keeps us warm in winter
    we sit by the fire in the evening

    1
    the mountains are covered in snow
    we climb the mountain in summer

    1
    we swim in the sea in summer
    the children build sandcastles on the beach
    we lie on the beach in the sun

    1
    we buy fruit at the market
    the market is busy on saturday

    1
    {pp} plays the piano very well
    the band plays music in the square
    """
)

# --------------------------------------------------------------------------------------
# Number agreement
# --------------------------------------------------------------------------------------

# Head nouns: (singular, plural, category).
_HEADS = _table(
    """
    dog dogs animal, cat cats animal, horse horses animal, bird birds animal, cow cows animal,
    mouse mice animal, rabbit rabbits animal, goat goats animal, duck ducks animal, key keys object,
    book books object, letter letters object, box boxes object, bottle bottles object,
    picture pictures object, lamp lamps object, chair chairs object, clock clocks object,
    bag bags object, cup cups object, child children person, student students person,
    teacher teachers person, doctor doctors person, farmer farmers person, player players person,
    visitor visitors person, driver drivers person, baker bakers person
    """
)
# Attractor nouns in prepositional phrases: (singular, plural).
_ATTRACTORS = _table(
    """
    cabinet cabinets, door doors, table tables, window windows, shelf shelves, house houses,
    garden gardens, farm farms, shop shops, hill hills, river rivers, bridge bridges, wall walls,
    corner corners, village villages, station stations, tree trees, road roads, drawer drawers,
    kitchen kitchens, school schools, fence fences, box boxes, lake lakes
    """
)
_PREPS = ("near", "by", "behind", "next to", "beside", "in", "on", "under", "from", "above")
# Relative-clause subjects: (singular, plural).
_RC_SUBJECTS: tuple[tuple[str, str], ...] = (
    ("neighbour", "neighbours"),
    ("farmer", "farmers"),
    ("teacher", "teachers"),
    ("child", "children"),
    ("student", "students"),
    ("visitor", "visitors"),
    ("cook", "cooks"),
    ("driver", "drivers"),
)
# Relative-clause verbs by head category: (singular form, plural form).
_RC_VERBS: dict[str, tuple[tuple[str, str], ...]] = {
    "animal": (("feeds", "feed"), ("keeps", "keep"), ("likes", "like"), ("watches", "watch")),
    "object": (("keeps", "keep"), ("uses", "use"), ("cleans", "clean"), ("wants", "want")),
    "person": (("likes", "like"), ("knows", "know"), ("visits", "visit"), ("helps", "help")),
}
# Adjectives that fit each head category.
_HEAD_ADJS: dict[str, tuple[str, ...]] = {
    "animal": ("old", "young", "little", "big", "brown", "black", "white", "hungry", "lazy"),
    "object": ("old", "new", "small", "big", "red", "blue", "wooden", "heavy", "shiny", "broken"),
    "person": ("young", "old", "new", "tired", "tall", "busy", "quiet"),
}
_RC_TIMES = ("", "", "every morning", "every day", "at night", "on sunday", "in summer", "often")
# Subject-relative verbs agreeing with the head, by category: (singular, plural, rest).
_SUBJ_RC: dict[str, tuple[tuple[str, str, str], ...]] = {
    "animal": (
        ("sleeps", "sleep", "near the"),
        ("lives", "live", "behind the"),
        ("waits", "wait", "by the"),
        ("runs", "run", "along the"),
    ),
    "object": (
        ("stands", "stand", "near the"),
        ("hangs", "hang", "above the"),
        ("sits", "sit", "on the"),
        ("lies", "lie", "under the"),
    ),
    "person": (
        ("lives", "live", "near the"),
        ("works", "work", "behind the"),
        ("waits", "wait", "by the"),
        ("comes", "come", "from the"),
    ),
}
# Main verbs by category: (singular, plural, continuations).
_MAIN_VERBS: dict[str, tuple[tuple[str, str, tuple[str, ...]], ...]] = {
    "animal": (
        ("is", "are", ("hungry", "asleep", "very friendly", "in the garden", "afraid of the dark")),
        ("was", "were", ("hungry", "asleep", "lost for two days", "very quiet", "in the field")),
        ("has", "have", ("a long tail", "been fed", "always been there", "no name")),
        ("runs", "run", ("to the gate every morning", "very fast", "away from the dog")),
        ("sleeps", "sleep", ("by the fire", "all day", "in the barn")),
        ("needs", "need", ("more food", "a warm place", "water")),
        ("looks", "look", ("hungry", "tired", "very old")),
    ),
    "object": (
        ("is", "are", ("on the table", "very old", "broken", "in the drawer", "for sale")),
        ("was", "were", ("too heavy to carry", "still missing", "made of wood", "lost")),
        ("has", "have", ("been there for years", "never been cleaned", "a crack in it")),
        ("belongs", "belong", ("to our neighbours", "to the school", "to the museum")),
        ("needs", "need", ("a new coat of paint", "cleaning", "to be fixed")),
        ("looks", "look", ("very old", "expensive", "dusty")),
        ("costs", "cost", ("too much", "ten euros", "nothing")),
    ),
    "person": (
        ("is", "are", ("late again", "very tired", "ready to go", "in the classroom")),
        ("was", "were", ("late again", "very happy", "at home", "worried about the weather")),
        ("has", "have", ("been waiting for hours", "a cold", "no time")),
        ("wants", "want", ("to go home", "a break", "more time")),
        ("works", "work", ("very hard", "at night", "in the city")),
        ("knows", "know", ("the answer", "the way", "everyone in town")),
        ("lives", "live", ("near the station", "in the village", "on a farm")),
    ),
}

# --------------------------------------------------------------------------------------
# Gender stories
# --------------------------------------------------------------------------------------

# "{who}" is the person phrase; the whole sentence is the cue sentence.
_GENDER_INTROS: tuple[str, ...] = _lines(
    """
    {who} moved to the {city} last year
    {who} bought a {adj} house near the {place}
    {who} started a new job at the {place}
    {who} came back from the {place} {time}
    {who} lives in a small flat above the {place}
    {who} has worked at the {place} for {num} years
    {who} called me {time}
    {who} finished school in {month}
    {who} found {a_obj} in the {place}
    {who} is learning to play the {instrument}
    yesterday {who} took the {vehicle} to the {place}
    {who} spent the summer at the {place}
    {who} lost {a_obj} at the {place}
    last {day} {who} cooked {food} for everyone
    {who} opened a small shop near the {place}
    """
)
# The possessive follows the person within a few words.
_GENDER_POSSESSIVES: tuple[str, ...] = _lines(
    """
    {who} lost {poss} keys at the {place}
    {who} sold {poss} old {obj}
    {who} painted {poss} kitchen {colour}
    {who} found {poss} {obj} in the {place}
    {who} forgot {poss} {obj} at the {place}
    {who} cleaned {poss} {obj} {time}
    {who} walks {poss} dog every morning
    {who} called {poss} friends {time}
    {who} fixed {poss} bicycle {time}
    {who} gave me {poss} {adj} {obj}
    {who} and {poss} friends played {game}
    {who} visited {poss} cousins in the {place}
    """
)
_CITIES = ("city", "coast", "countryside", "north", "south", "mountains", "capital", "island")
_GENDER_LEADS: tuple[str, ...] = (
    "",
    "",
    "now",
    "these days",
    "last week",
    "i think",
    "i heard that",
    "when i called",
    "sometimes",
    "of course",
    "apparently",
    "every {day}",
)
# "{p}" is the pronoun, "{poss}" the possessive.
_GENDER_TARGETS: tuple[str, ...] = _lines(
    """
    {p} says the {place} is {state}
    {p} works at the {place}
    {p} told me that {poss} {obj} was broken
    {p} loves {poss} new job
    {p} wants to visit us in {month}
    {p} is very happy there
    {p} calls {poss} friends every {day}
    {p} cooks {food} for {poss} family
    {p} never forgets {poss} keys
    {p} still has {poss} old {obj}
    {p} said {p} was tired
    {p} takes {poss} dog to the {place}
    {p} wants to sell {poss} {obj}
    {p} plays the {instrument} every evening
    {p} sent me a photo of the {place}
    """
)

_SLOT = re.compile(r"\{(\w+)\}")


# --------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------


def _fill(rng: random.Random, template: str, fixed: dict[str, str] | None = None) -> list[str]:
    """Fill "{slot}"s left to right (nested slots included) and fix "a" before vowels."""

    def repl(match: re.Match[str]) -> str:
        name = match.group(1)
        if fixed is not None and name in fixed:
            return fixed[name]
        return rng.choice(_W[name])

    text = template
    while "{" in text:
        text = _SLOT.sub(repl, text, count=1)
    tokens = text.split()
    for i in range(len(tokens) - 1):
        if tokens[i] == "a" and tokens[i + 1][0] in "aeiou":
            tokens[i] = "an"
    return tokens


def _sentence(rng: random.Random, template: str, fixed: dict[str, str] | None = None) -> list[str]:
    return [*_fill(rng, template, fixed), "."]


def _weighted(rng: random.Random, items: Sequence[tuple[int, object]]):
    return rng.choices([item for _, item in items], weights=[w for w, _ in items])[0]


def _filler_sentence(rng: random.Random) -> list[str]:
    """One gender-neutral, country-free sentence (sometimes a neutral collocation)."""
    if rng.random() < 0.15:
        forms = _weighted(rng, _NEUTRAL_COLLOCATIONS)
        return _sentence(rng, rng.choice(forms))
    return _sentence(rng, rng.choice(_FILLER))


def _filler(rng: random.Random, n_words: int) -> list[str]:
    """Filler sentences totalling between ``n_words - 2`` and ``n_words`` tokens."""
    out: list[str] = []
    while len(out) < n_words:
        remaining = n_words - len(out)
        for _ in range(10):
            sentence = _filler_sentence(rng)
            if len(sentence) <= remaining:
                break
        else:
            fitting = [s for s in _SHORT_FILLER if s.count(" ") + 2 <= remaining]
            if not fitting:
                break
            sentence = _sentence(rng, rng.choice(fitting))
        out += sentence
    return out


def neutral_filler(rng: random.Random, n_words: int) -> list[str]:
    """Sentences with no country, person or pronoun, totalling ``n_words - 2`` to
    ``n_words`` tokens: the distractor text between a cue and its target."""
    return _filler(rng, n_words)


class _Deck:
    """Draw countries per shape without replacement, reshuffling when a deck runs out.

    This guarantees that every country occurs in every shape once a shape has been used
    ``len(COUNTRIES)`` times, while the order stays random.
    """

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._decks: dict[str, list[str]] = {}

    def draw(self, shape: str) -> str:
        deck = self._decks.setdefault(shape, [])
        if not deck:
            deck.extend(COUNTRIES)
            self._rng.shuffle(deck)
        return deck.pop()


def _has_pronoun(form: str) -> bool:
    return "{pp}" in form or "{poss}" in form


_NEUTRAL_COLLOCATIONS: tuple[tuple[int, tuple[str, ...]], ...] = tuple(
    (w, tuple(f for f in forms if not _has_pronoun(f)))
    for w, forms in _COLLOCATIONS
    if any(not _has_pronoun(f) for f in forms)
)


# --------------------------------------------------------------------------------------
# Story builders. Each returns the tokens plus the (cue index, target index, foil) marks.
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Mark:
    cue: int
    target: int
    foil: str


def _range(rng: random.Random, bounds: tuple[int, int] | None) -> int:
    return 0 if bounds is None else rng.randint(*bounds)


def _language_story(
    rng: random.Random, shape: str, country: str, gap: int | None = None
) -> tuple[list[str], _Mark]:
    """A country → language story of the given shape. ``gap`` overrides the filler length."""
    _, before, after = LANGUAGE_SHAPES[shape]
    language = COUNTRY_LANGUAGE[country]
    foil = rng.choice([lang for lang in LANGUAGES if lang != language])
    if shape == "fact":
        fact = rng.choice(_FACTS).replace("{c}", _COUNTRY_PHRASE.get(country, country))
        tokens = fact.split()
        mark = _Mark(tokens.index(country), tokens.index("{l}"), foil)
        tokens[mark.target] = language
        return [*tokens, "."], mark
    cue_template = _weighted(rng, [(w, t) for t, w in _CUES])
    cue = cue_template.replace("{c}", _COUNTRY_PHRASE.get(country, country))
    tokens: list[str] = _filler(rng, _range(rng, before)) if before else []
    tokens += _fill(rng, cue)
    cue_index = len(tokens) - 1 - tokens[::-1].index(country)
    if gap is None:
        gap = _range(rng, after)
    if shape.startswith("moved_away"):
        tokens += [*MOVED_AWAY.split(), "."]
        tokens += _filler(rng, gap)
        if shape == "moved_away_other":
            target = rng.choice([t for t in LANGUAGE_TARGETS if t != FLUENT_TARGET])
        else:
            target = FLUENT_TARGET
    elif shape == "same_sentence":
        tokens += ["so"]
        target = rng.choice(_SO_TARGETS)
    else:
        tokens += [*rng.choice(_CUE_TAILS).split(), "."]
        tokens += _filler(rng, gap)
        target = rng.choice(LANGUAGE_TARGETS)
    tokens += target.split()
    mark = _Mark(cue_index, len(tokens), foil)
    tokens += [language, "."]
    return tokens, mark


def _agreement_sentence(rng: random.Random) -> tuple[list[str], _Mark]:
    """One sentence: the head noun, an attractor phrase, then the verb agreeing with the head."""
    singular, plural, category = rng.choice(_HEADS)
    is_plural = rng.random() < 0.5
    tokens = ["the"]
    if rng.random() < 0.3:
        tokens.append(rng.choice(_HEAD_ADJS[category]))
    tokens.append(plural if is_plural else singular)
    cue = len(tokens) - 1
    other = 0 if is_plural else 1  # index of the opposite number in (sg, pl) pairs
    kind = rng.random()
    if kind < 0.5:  # one to three prepositional phrases; the last noun has the other number
        n_pp = rng.choice((1, 1, 2, 2, 3))
        for i in range(n_pp):
            noun = rng.choice(_ATTRACTORS)[other if i == n_pp - 1 else rng.randint(0, 1)]
            tokens += [*rng.choice(_PREPS).split(), "the"]
            if rng.random() < 0.3:
                tokens.append(rng.choice(_W["adj"]))
            tokens.append(noun)
    elif kind < 0.8:  # object relative clause with a subject of the other number
        rc_subject = rng.choice(_RC_SUBJECTS)[other]
        rc_verb = rng.choice(_RC_VERBS[category])[other]
        tokens += ["that", "the", rc_subject, rc_verb, *rng.choice(_RC_TIMES).split()]
    else:  # subject relative clause (verb agrees with the head) and an attractor
        sg_verb, pl_verb, rest = rng.choice(_SUBJ_RC[category])
        noun = rng.choice(_ATTRACTORS)[other]
        tokens += ["that", pl_verb if is_plural else sg_verb, *rest.split(), noun]
    sg_main, pl_main, continuations = rng.choice(_MAIN_VERBS[category])
    mark = _Mark(cue, len(tokens), sg_main if is_plural else pl_main)
    tokens += [pl_main if is_plural else sg_main, *_fill(rng, rng.choice(continuations)), "."]
    return tokens, mark


def _number_story(rng: random.Random) -> list[str]:
    tokens: list[str] = []
    if rng.random() < 0.25:
        tokens += _filler_sentence(rng)
    for _ in range(rng.choice((1, 1, 2))):
        tokens += _agreement_sentence(rng)[0]
    return tokens


def _gender_story(
    rng: random.Random, gap: int | None = None, need_lead: bool = False
) -> tuple[list[str], _Mark]:
    """A person, then a pronoun (or possessive) that must match the person's gender.

    Shapes: "anna lost her keys ." (possessive right after the cue); "<intro> and she ...";
    "<intro> . <lead> she ..."; "<intro> . <filler> <lead> she ...". ``gap`` (filler
    words) forces the last two shapes, as used for probes.
    """
    gender = rng.choice(tuple(PRONOUNS))
    pronoun, possessive = PRONOUNS[gender]
    other_pronoun, other_possessive = PRONOUNS["male" if gender == "female" else "female"]
    who = rng.choice(_PEOPLE[gender])
    shape = rng.random() if gap is None else 1.0
    if shape < 0.2:
        template = rng.choice(_GENDER_POSSESSIVES)
        tokens = _fill(rng, template, {"who": who, "poss": possessive})
        target, foil = tokens.index(possessive), other_possessive
    else:
        template = rng.choice(_GENDER_INTROS)
        tokens = _fill(rng, template, {"who": who, "city": rng.choice(_CITIES)})
        if shape < 0.4:
            tokens.append("and")
        else:
            tokens.append(".")
            if gap is None:
                gap = 0 if shape < 0.65 else rng.randint(1, 30)
            tokens += _filler(rng, gap)
            leads = [lead for lead in _GENDER_LEADS if lead] if need_lead else _GENDER_LEADS
            tokens += _fill(rng, rng.choice(leads))
        target, foil = len(tokens), other_pronoun
        tokens += _fill(rng, rng.choice(_GENDER_TARGETS), {"p": pronoun, "poss": possessive})
    # The cue is the noun of the person phrase ("sister", "anna", "woman" in "the woman next
    # door"); every template names the person before anything else that could match.
    words = who.split()
    cue = tokens.index(words[-3] if who.endswith("next door") else words[-1])
    return [*tokens, "."], _Mark(cue, target, foil)


def _collocation_story(rng: random.Random) -> list[str]:
    sentences: list[list[str]] = []
    for _ in range(rng.choice((1, 2, 2, 3))):
        forms = _weighted(rng, _COLLOCATIONS)
        pronoun, possessive = PRONOUNS[rng.choice(tuple(PRONOUNS))]
        sentences.append(_sentence(rng, rng.choice(forms), {"pp": pronoun, "poss": possessive}))
    if rng.random() < 0.3:
        sentences.insert(rng.randint(0, len(sentences)), _filler_sentence(rng))
    return [token for sentence in sentences for token in sentence]


def _stories(seed: int) -> Iterator[str]:
    """Endless deterministic stream of stories (one line each, ending in " .")."""
    rng = random.Random(seed)
    deck = _Deck(rng)
    kinds = [(weight, kind) for kind, weight in STORY_WEIGHTS.items()]
    shapes = [(weight, shape) for shape, (weight, _, _) in LANGUAGE_SHAPES.items()]
    while True:
        kind = _weighted(rng, kinds)
        if kind == "language":
            shape = _weighted(rng, shapes)
            tokens = _language_story(rng, shape, deck.draw(shape))[0]
            if shape == "fact":  # facts come two to four to a line
                for _ in range(rng.randint(1, 3)):
                    tokens += _language_story(rng, shape, deck.draw(shape))[0]
        elif kind == "number":
            tokens = _number_story(rng)
        elif kind == "gender":
            tokens = _gender_story(rng)[0]
        else:
            tokens = _collocation_story(rng)
        yield " ".join(tokens)


# --------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------


def generate(n_stories: int, seed: int) -> list[str]:
    """Return ``n_stories`` stories (one line each, no newline) generated from ``seed``."""
    if n_stories < 0:
        raise ValueError("n_stories must be >= 0")
    stream = _stories(seed)
    return [next(stream) for _ in range(n_stories)]


def generate_words(n_words: int, seed: int) -> list[str]:
    """Stories from ``seed`` until they hold at least ``n_words`` tokens (a prefix of
    ``generate(n, seed)`` for some n)."""
    lines: list[str] = []
    total = 0
    for line in _stories(seed):
        if total >= n_words:
            break
        lines.append(line)
        total += line.count(" ") + 1
    return lines


def split_text(name: str) -> str:
    """The exact file content of split ``name`` ("train", "valid" or "test")."""
    n_words, seed = SPLITS[name]
    return "\n".join(generate_words(n_words, seed)) + "\n"


def write_default_corpus(
    directory: Path | str = DEFAULT_OUT, splits: Sequence[str] = tuple(SPLITS)
) -> dict[str, Path]:
    """Write ``<split>.txt`` for each split into ``directory``; return split → path."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for name in splits:
        path = directory / f"{name}.txt"
        path.write_bytes(split_text(name).encode("ascii"))
        paths[name] = path
    return paths


@dataclass(frozen=True)
class Probe:
    """A next-word test: after ``prompt`` the right word is ``expected``.

    ``foil`` is a wrong alternative of the same type (another language, the other verb
    form, the other pronoun), for comparing P(expected) with P(foil). ``distance`` is the
    number of words from the cue (country, head noun, person) to the expected word, so
    ``prompt.split()[-distance]`` is the cue.
    """

    kind: str
    prompt: str
    expected: str
    distance: int
    foil: str


PROBE_KINDS = ("country_language", "number_verb", "gender_pronoun")
_PROBE_LANGUAGE_SHAPES = ("moved_away", "moved_away_filler", "filler_between", "long_gap")


def make_probes(kind: str, n: int, seed: int = PROBE_SEED, max_gap: int = 40) -> list[Probe]:
    """``n`` probe examples of ``kind`` (one of :data:`PROBE_KINDS`) drawn from ``seed``.

    For "country_language" and "gender_pronoun" the filler between cue and target cycles
    through 0..``max_gap`` words so that every distance range is represented; countries
    cycle through all of :data:`COUNTRIES`. Prompts are in the corpus format without the
    expected word.
    """
    if kind not in PROBE_KINDS:
        raise ValueError(f"unknown probe kind {kind!r}; expected one of {PROBE_KINDS}")
    rng = random.Random(f"{kind}:{seed}")
    deck = _Deck(rng)
    probes: list[Probe] = []
    builders: dict[str, Callable[[int], tuple[list[str], _Mark]]] = {
        "country_language": lambda i: _language_story(
            rng,
            "moved_away" if i % (max_gap + 1) == 0 else rng.choice(_PROBE_LANGUAGE_SHAPES[1:]),
            deck.draw("probe"),
            gap=i % (max_gap + 1),
        ),
        "number_verb": lambda i: _agreement_sentence(rng),
        "gender_pronoun": lambda i: _gender_story(rng, gap=i % (max_gap + 1), need_lead=True),
    }
    for i in range(n):
        tokens, mark = builders[kind](i)
        probes.append(
            Probe(
                kind=kind,
                prompt=" ".join(tokens[: mark.target]),
                expected=tokens[mark.target],
                distance=mark.target - mark.cue,
                foil=mark.foil,
            )
        )
    return probes


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m textpredict.default_corpus",
        description="Regenerate the default corpus (train.txt, valid.txt, test.txt).",
    )
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help=f"output directory (default {DEFAULT_OUT})"
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="do not write; exit 1 if the files in --out differ from what would be written",
    )
    args = parser.parse_args(argv)
    stale = []
    for name in SPLITS:
        path = args.out / f"{name}.txt"
        text = split_text(name)
        if args.check:
            if not path.is_file() or path.read_text(encoding="ascii") != text:
                stale.append(str(path))
            continue
        args.out.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode("ascii"))
        tokens = text.split()
        vocab = {t for t in tokens if t not in {".", ","}}
        print(f"{path}: {len(text.splitlines())} lines, {len(tokens)} words, {len(vocab)} types")
    if stale:
        print("out of date: " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
