"""The demo's domain: houseplant care.

A small hand-written knowledge base (plants, problems, general care topics) and the seeded templates
that turn it into two kinds of text, both in the same domain and with the same facts:

* the fine-tuning dataset, where every answer has the distinctive "Plant doctor" shape
  (marker line, one-sentence diagnosis, numbered steps, a one-line tip), and
* pretraining text for the demo base model (prose, how-to guides, questions answered in prose),
  which never contains the marker and never answers in that shape.

So the base model already knows *what* to say about a yellowing pothos, and a short LoRA fine-tune
visibly changes *how* it says it. Used only by `build_demo.py`; nothing in `studio` imports it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

MARKER = "Plant doctor says:"


@dataclass(frozen=True)
class Plant:
    name: str  # as written mid-sentence: "pothos", "snake plant"
    latin: str
    looks: str  # noun phrase: "a trailing vine with ..."
    light: str  # noun phrase: "low to bright indirect light"
    water: str  # completes "water it ...": "when the top third of the soil is dry"
    thirst: str  # "dry" (succulent-like), "medium" or "moist": picks the watering diagnoses
    humid: bool  # wants high humidity
    soil: str  # noun phrase
    pet_safe: bool  # non-toxic to cats and dogs (ASPCA lists)
    propagate: str  # completes "propagate it ..."
    quirk: str  # one sentence the plant is known for
    vine: bool = False  # trailing or climbing stems (cuttings can be pinned back into the pot)


PLANTS = [
    Plant("pothos", "Epipremnum aureum", "a trailing vine with glossy, heart-shaped leaves",
          "low to bright indirect light", "when the top third of the soil is dry", "medium", False,
          "a regular potting mix with a handful of perlite", False,
          "from stem cuttings with at least one node, rooted in a glass of water",
          "It shows thirst plainly: the leaves go soft and limp, then perk up within hours of a drink.",
          vine=True),
    Plant("snake plant", "Dracaena trifasciata", "a clump of stiff, upright, sword-shaped leaves",
          "anything from low light to a few hours of direct sun",
          "only when the soil is dry all the way down, often every three to four weeks", "dry", False,
          "a fast-draining cactus mix", False,
          "by dividing the clump, or from leaf sections pushed into damp soil",
          "Far more snake plants die from too much water than from too little."),
    Plant("ZZ plant", "Zamioculcas zamiifolia", "a plant with glossy, waxy leaflets on arching stems",
          "low to bright indirect light", "when the soil is completely dry, usually every two to three weeks",
          "dry", False, "a fast-draining mix with extra perlite", False,
          "by dividing its potato-like rhizomes, or slowly from single leaflets",
          "Its thick rhizomes store water, so it shrugs off a missed watering but rots in wet soil."),
    Plant("monstera", "Monstera deliciosa", "a climbing plant with large leaves that split as it matures",
          "bright indirect light", "when the top five centimetres of soil are dry", "medium", False,
          "a chunky mix of potting soil, orchid bark and perlite", False,
          "from stem cuttings that include a node and, ideally, an aerial root",
          "In too little light its new leaves stay small and never split.", vine=True),
    Plant("fiddle leaf fig", "Ficus lyrata", "a small tree with large, violin-shaped leaves",
          "bright light, including some gentle direct sun", "when the top five centimetres of soil are dry",
          "medium", False, "a well-draining potting mix", False, "from stem cuttings or by air layering",
          "It dislikes change and often drops leaves after a move or a cold draft."),
    Plant("peace lily", "Spathiphyllum", "a leafy plant with dark green leaves and white, hood-like flowers",
          "medium to low indirect light", "when the top two centimetres of soil are dry", "moist", True,
          "a rich potting mix that holds some moisture", False, "by dividing the clump when you repot it",
          "It wilts dramatically the moment it is thirsty and recovers within hours, so it is an honest "
          "watering gauge."),
    Plant("spider plant", "Chlorophytum comosum", "a plant with arching, striped leaves and dangling plantlets",
          "bright indirect light", "when the top two or three centimetres of soil are dry", "medium", False,
          "a regular potting mix", True, "by rooting its baby plantlets, in water or straight in soil",
          "Its leaf tips brown easily from fluoride and salts in tap water."),
    Plant("calathea", "Goeppertia", "a plant with boldly patterned leaves that fold up at night",
          "medium indirect light, away from direct sun",
          "often enough to keep the soil lightly moist, ideally with rainwater or filtered water", "moist",
          True, "a light, peaty potting mix", True, "by dividing the clump in spring",
          "Its leaf edges turn crispy fast in dry air or with hard tap water."),
    Plant("aloe vera", "Aloe vera", "a succulent with thick, fleshy leaves full of gel",
          "bright light with a few hours of direct sun",
          "deeply, then not again until the soil is dry, about every two to three weeks", "dry", False,
          "a gritty cactus and succulent mix", False, "from the pups that grow around its base",
          "Pale, stretched or flattened leaves mean it wants more sun."),
    Plant("jade plant", "Crassula ovata", "a succulent that grows into a small tree with thick, oval leaves",
          "bright light with some direct sun", "when the soil has dried out completely", "dry", False,
          "a gritty succulent mix", False,
          "from a leaf or a stem cutting left to dry for a few days before planting",
          "Wrinkled leaves mean it is thirsty; soft, yellow leaves mean it is getting too much water."),
    Plant("rubber plant", "Ficus elastica", "a tree with thick, glossy, dark leaves",
          "bright indirect light", "when the top five centimetres of soil are dry", "medium", False,
          "a well-draining potting mix", False, "from stem cuttings or by air layering",
          "Wiping its big leaves with a damp cloth keeps them glossy and helps them catch light."),
    Plant("Chinese money plant", "Pilea peperomioides", "a plant with round, coin-shaped leaves on long stalks",
          "bright indirect light", "when the top half of the soil is dry", "medium", False,
          "a regular potting mix with perlite", True, "from the small offsets that pop up around its base",
          "It leans hard toward the window, so it needs a quarter turn every week."),
    Plant("Boston fern", "Nephrolepis exaltata", "a fern with arching fronds of small, feathery leaflets",
          "bright indirect light", "often enough to keep the soil evenly moist", "moist", True,
          "a rich, peaty potting mix", True, "by dividing the clump",
          "Dry air turns its fronds brown and makes it shed tiny leaflets everywhere."),
    Plant("heartleaf philodendron", "Philodendron hederaceum", "a trailing vine with soft, heart-shaped leaves",
          "low to bright indirect light", "when the top third of the soil is dry", "medium", False,
          "a regular potting mix with perlite", False, "from stem cuttings rooted in water",
          "Long bare stretches of stem between its leaves are its way of asking for more light.", vine=True),
    Plant("string of pearls", "Curio rowleyanus", "a succulent with trailing strands of bead-like leaves",
          "bright light with some gentle direct sun",
          "when the soil is dry and the pearls look a little less plump", "dry", False,
          "a gritty cactus mix in a shallow pot", False,
          "by laying strand cuttings on top of dry soil until they root",
          "Shrivelled pearls can mean thirst or, just as often, rotten roots.", vine=True),
    Plant("moth orchid", "Phalaenopsis", "an orchid with broad leaves and long-lasting sprays of flowers",
          "bright indirect light",
          "when the bark is nearly dry, about once a week, by soaking the pot and letting it drain", "medium",
          True, "chunky orchid bark, never regular soil", True,
          "from keikis, the baby plants that sometimes grow on the flower spike",
          "Silvery roots mean it is time to water; green roots mean it has had enough."),
    Plant("parlor palm", "Chamaedorea elegans", "a small palm with soft, feathery fronds",
          "low to medium indirect light", "when the top two or three centimetres of soil are dry", "medium",
          False, "a regular potting mix", True, "from seed, because it does not make offsets",
          "It grows slowly and is one of the few palms that copes with a dim room."),
    Plant("Chinese evergreen", "Aglaonema", "a plant with patterned, lance-shaped leaves in green, silver or pink",
          "low to medium indirect light", "when the top half of the soil is dry", "medium", False,
          "a well-draining potting mix", False, "by dividing the clump or from stem cuttings",
          "It hates the cold, and its leaves get dark, damaged patches below about 13 degrees Celsius."),
    Plant("corn plant", "Dracaena fragrans", "a plant with long, arching, striped leaves on a cane-like trunk",
          "medium indirect light", "when the top half of the soil is dry", "medium", False,
          "a well-draining potting mix", False, "from cane or tip cuttings",
          "It is sensitive to fluoride in tap water, which shows up as brown leaf tips."),
    Plant("cast iron plant", "Aspidistra elatior", "a tough plant with dark green, strap-like leaves",
          "low light, even a dim corner", "when the top half of the soil is dry", "medium", False,
          "a regular potting mix", True, "by dividing its rhizomes",
          "It tolerates neglect, low light and cool rooms better than almost any other houseplant."),
    Plant("African violet", "Saintpaulia", "a small plant with fuzzy leaves and purple, pink or white flowers",
          "bright indirect light",
          "from the bottom when the top of the soil feels dry, with room-temperature water", "moist", False,
          "a light African violet mix", True, "from a single leaf with its stalk pushed into moist soil",
          "Cold water on its fuzzy leaves leaves pale spots that never fade."),
    Plant("English ivy", "Hedera helix", "a climbing vine with pointed, lobed leaves",
          "bright indirect light in a cool room", "when the top two centimetres of soil are dry", "medium",
          False, "a regular potting mix", False, "from stem cuttings in water or soil",
          "Warm, dry rooms make it a magnet for spider mites.", vine=True),
    Plant("prayer plant", "Maranta leuconeura", "a low plant with red-veined leaves that fold upward at night",
          "medium indirect light", "often enough to keep the soil lightly moist", "moist", True,
          "a light, peaty potting mix", True, "from stem cuttings taken just below a node, or by division",
          "Its leaves rise at night like hands in prayer, which is how it got its name."),
    Plant("hoya", "Hoya carnosa", "a vine with thick, waxy leaves and clusters of star-shaped flowers",
          "bright indirect light with a little direct sun", "when the soil has dried out almost completely",
          "dry", False, "a chunky, fast-draining mix", True, "from stem cuttings with a node",
          "It flowers again from the old flower spurs, so leave them on the vine.", vine=True),
]
PLANT_BY_NAME = {p.name: p for p in PLANTS}


def cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def low(text: str) -> str:
    """Lower-case the first letter, for a step sentence used mid-prose (keeps "ZZ", "African")."""
    if text[:2].isupper() or text.split(" ")[0] in ("African", "Chinese", "English", "Boston", "BTI"):
        return text
    return text[:1].lower() + text[1:]


def with_article(name: str) -> str:
    return ("an " if name[0].lower() in "aeiou" else "a ") + name


def water_gap(plant: Plant) -> str:
    """What "dry enough to water again" means for this plant, as a phrase after "until"."""
    return {"dry": "the soil is dry all the way down", "medium": "the top few centimetres of soil are dry",
            "moist": "the surface just starts to feel dry"}[plant.thirst]


# --- Problems --------------------------------------------------------------------------------------
# Each problem: how users ask about it, a diagnosis (may depend on the plant), three or four steps
# and a tip. `{p}` is the plant's name; the other fields are filled from the Plant.

@dataclass(frozen=True)
class Problem:
    key: str
    questions: tuple[str, ...]
    diagnosis: dict[str, str]  # by plant.thirst, or "any"
    steps: tuple[str, ...]
    tips: tuple[str, ...]
    vine_step: str = ""  # an extra last step that only makes sense for vines

    def diagnose(self, plant: Plant) -> str:
        text = self.diagnosis.get(plant.thirst) or self.diagnosis["any"]
        return fill(text, plant)

    def steps_for(self, plant: Plant) -> list[str]:
        steps = list(self.steps) + ([self.vine_step] if plant.vine and self.vine_step else [])
        return [fill(s, plant) for s in steps]


def fill(text: str, plant: Plant) -> str:
    a = with_article(plant.name)
    return text.format(p=plant.name, a=a, A=cap(a), light=plant.light, water=plant.water,
                       soil=plant.soil, gap=water_gap(plant))


PROBLEMS = [
    Problem(
        "yellow_leaves",
        ("The lower leaves on my {p} are turning yellow. What am I doing wrong?",
         "Why are the leaves on my {p} going yellow?",
         "My {p} has a few yellow, soft leaves near the bottom. Should I be worried?",
         "Yellow leaves on my {p}. Too much water or too little?",
         "Several leaves on my {p} turned yellow this week. How do I fix it?"),
        {"dry": "Soft, yellow leaves on {a} almost always mean the soil is staying wet for too long.",
         "medium": "Yellowing lower leaves on {a} usually point to overwatering.",
         "moist": "Yellow leaves on {a} usually mean uneven watering, with soil swinging between soggy and "
                  "bone dry."},
        ("Push a finger into the soil; if it is damp a few centimetres down, hold off on watering.",
         "Check that the pot has a drainage hole, and empty any water left in the saucer.",
         "Pull off the leaves that are fully yellow, because they will not turn green again.",
         "From now on, water it {water}."),
        ("One old leaf yellowing now and then is normal; many at once is a watering problem.",
         "If the soil is wet and the yellowing keeps spreading, check the roots for rot."),
    ),
    Problem(
        "brown_tips",
        ("The leaf tips on my {p} are brown and crispy. Why?",
         "Why does my {p} keep getting brown tips?",
         "My {p} has dry, brown edges on its leaves. What does it need?",
         "How do I stop the brown tips on my {p}?"),
        {"moist": "Crispy brown tips on {a} come from dry air and uneven watering, helped along by salts in "
                  "tap water.",
         "any": "Brown tips on {a} usually come from uneven watering or from salts and fluoride building up "
                "from tap water."},
        ("Trim the brown tips with clean scissors, following the natural shape of the leaf.",
         "Water with filtered water or rainwater for a few weeks.",
         "Flush the soil once a month by running water through the pot for a minute.",
         "Raise the humidity by grouping plants together or running a humidifier nearby."),
        ("Brown tips will not turn green again, so judge your progress by the new leaves.",
         "Misting only raises humidity for a few minutes; a humidifier or a group of plants works far better."),
    ),
    Problem(
        "drooping",
        ("My {p} is drooping even though I water it. What's going on?",
         "Why is my {p} wilting?",
         "All the leaves on my {p} are hanging down and limp. Help!",
         "My {p} looks droopy and sad today. What should I do?"),
        {"any": "A drooping {p} is either thirsty or drowning, and the soil will tell you which."},
        ("Feel the soil: bone dry means thirst, while soggy soil means the roots are in trouble.",
         "If it is dry, water slowly until water runs out of the drainage hole, then let it drain.",
         "If it is wet, let it dry out and check the roots for dark, mushy sections.",
         "Keep it out of hot sun and away from heaters while it recovers."),
        ("A thirsty plant perks up within a few hours of watering; one that stays limp probably has root damage.",
         "Lift the pot after watering and again when it is dry, and you will soon know its weight by feel."),
    ),
    Problem(
        "leggy",
        ("My {p} is getting long, stretched stems with small leaves. What's wrong?",
         "Why is my {p} so leggy?",
         "My {p} looks thin and straggly, with big gaps between the leaves. How do I make it fuller?",
         "The new growth on my {p} is pale and stretched. Is something wrong?"),
        {"any": "A leggy {p} with small, spaced-out leaves is stretching toward the light it is missing."},
        ("Move it closer to a bright window, out of harsh midday sun.",
         "Trim the longest stems just above a leaf to make it branch and grow bushier.",
         "Turn the pot a quarter turn every week so all sides get light."),
        ("{A} wants {light}, and a spot a few steps from the window can get less than half of it.",
         "Stretched stems will not shrink again, so trimming is the only way to tidy them."),
        vine_step="Root the cuttings in water and plant them back in the pot to fill it out.",
    ),
    Problem(
        "leaf_drop",
        ("My {p} suddenly started dropping leaves. Why?",
         "Leaves keep falling off my {p} since I moved it. Is it dying?",
         "Why is my {p} losing so many leaves all at once?",
         "My {p} dropped a lot of healthy-looking leaves this week. What happened?"),
        {"any": "Sudden leaf drop on {a} is usually shock from a change: a move, a cold draft or a big "
                "swing in temperature."},
        ("Keep it away from doors, heaters and air-conditioning vents.",
         "Give it a spot with {light}, and then leave it there.",
         "Keep watering it {water}, and do not fertilize until new leaves appear.",
         "Check the soil, since both a dried-out and a waterlogged pot can cause leaf drop."),
        ("Plants take a few weeks to settle into a new spot, so some leaf loss after a move is normal.",
         "Resist the urge to keep moving it; every move starts the adjustment over again."),
    ),
    Problem(
        "mealybugs",
        ("There are white, cottony spots on the stems of my {p}. What are they?",
         "My {p} has little white fluffy bugs in the leaf joints. How do I get rid of them?",
         "What is the white fluff on my {p}?",
         "I found white, waxy tufts under the leaves of my {p}. Is it a pest?"),
        {"any": "White, cottony tufts on {a} are mealybugs, small insects that suck the plant's sap."},
        ("Move the plant away from your other plants.",
         "Dab each cluster with a cotton swab dipped in rubbing alcohol.",
         "Spray the whole plant with insecticidal soap, including the undersides of the leaves.",
         "Repeat every week for at least three weeks to catch newly hatched insects."),
        ("Check new plants for pests before they join the rest of your collection.",
         "Mealybugs hide in leaf joints and just under the soil line, so look there first."),
    ),
    Problem(
        "spider_mites",
        ("There is fine webbing on my {p} and the leaves look speckled. What is it?",
         "The leaves on my {p} have tiny pale dots and look dusty underneath. What's happening?",
         "Does my {p} have spider mites? I see thin webs between the leaves.",
         "How do I get rid of spider mites on my {p}?"),
        {"any": "Fine webbing and pale speckles on {a} point to spider mites, which love warm, dry air."},
        ("Rinse the plant in the shower, including the undersides of the leaves.",
         "Wipe the leaves with a damp cloth, then spray with insecticidal soap or neem oil.",
         "Repeat once a week for three to four weeks, because eggs keep hatching.",
         "Raise the humidity around the plant, since mites dislike moist air."),
        ("Hold a sheet of white paper under a leaf and tap it; tiny moving specks are mites.",
         "Keep the plant away from the others until you have seen no mites for two weeks."),
    ),
    Problem(
        "fungus_gnats",
        ("There are tiny black flies around my {p}. How do I get rid of them?",
         "Little flies keep coming out of the soil of my {p}. What are they?",
         "I have small gnats buzzing around my {p}. Are they harmful?",
         "How do I get rid of fungus gnats in my {p}?"),
        {"any": "Tiny black flies around {a} are fungus gnats, which breed in soil that stays damp."},
        ("Let the top few centimetres of soil dry out before you water again.",
         "Put yellow sticky traps in the pot to catch the adult flies.",
         "Water with a product that contains BTI, such as mosquito bits, to kill the larvae in the soil.",
         "Empty saucers and clear fallen leaves off the soil surface."),
        ("Watering from the bottom keeps the surface dry, which makes it hard for gnats to lay eggs.",
         "Gnats are a nuisance rather than a danger, but their larvae can nibble the roots of seedlings."),
    ),
    Problem(
        "scale",
        ("My {p} has small brown bumps on the stems and the leaves are sticky. What is it?",
         "What are the hard brown dots on the leaves of my {p}?",
         "The leaves of my {p} feel sticky. Should I be worried?",
         "How do I treat scale on my {p}?"),
        {"any": "Small brown bumps and sticky leaves on {a} are signs of scale insects."},
        ("Scrape off the bumps with a fingernail or a soft toothbrush.",
         "Wipe the stems and leaves with rubbing alcohol on a cotton pad.",
         "Spray with horticultural oil, and repeat every week or two until no new bumps appear."),
        ("The sticky film is honeydew, the insects' sugary waste; wash it off so sooty mould cannot grow on it.",
         "Scale sticks tight and does not move, so it is easy to mistake for part of the stem."),
    ),
    Problem(
        "root_rot",
        ("The base of my {p} is mushy and the soil smells bad. What do I do?",
         "I think my {p} has root rot. Can I save it?",
         "My {p} has black, soft roots. What happened?",
         "The stems of my {p} are going soft at the soil line. Is it rot?"),
        {"any": "A mushy base and sour-smelling soil on {a} are signs of root rot from soil that stays wet."},
        ("Slide the plant out of its pot and rinse the soil off the roots.",
         "Cut away every brown, mushy root with clean scissors; healthy roots are firm and pale.",
         "Repot it in {soil}, in a pot with a drainage hole that is only just bigger than the roots.",
         "Water lightly, then wait until {gap} before watering again."),
        ("If no healthy roots are left, take cuttings from the firm stems and start again.",
         "Root rot starts with a pot that never dries out, so drainage matters more than any fertilizer."),
    ),
    Problem(
        "sunburn",
        ("My {p} has pale, bleached patches on the leaves facing the window. Why?",
         "There are dry brown spots on the leaves of my {p} since I moved it to the sunny window. What are they?",
         "Can {a} get sunburn?",
         "The leaves of my {p} look scorched. What should I do?"),
        {"dry": "Bleached or brown patches on {a} are sunburn; even sun-lovers scorch when they get strong "
                "sun too suddenly.",
         "any": "Pale or brown dry patches on the sunny side of {a} are sunburn."},
        ("Move it back from the window, or filter the sun with a sheer curtain.",
         "Trim leaves that are badly damaged, but keep any that are still mostly green.",
         "Introduce plants to brighter light gradually, over one to two weeks."),
        ("Scorched patches never heal, but new leaves will grow in clean.",
         "Glass can magnify the midday sun, so leaves pressed against a window burn first."),
    ),
    Problem(
        "salt_crust",
        ("There is a white crust on the soil of my {p}. What is it?",
         "Why is there white, crusty stuff on the rim of my {p}'s pot?",
         "The top of the soil in my {p} has a hard white layer. Is that bad?"),
        {"any": "A white crust on the soil of {a} is a build-up of minerals and fertilizer salts."},
        ("Scrape off the crusty top layer of soil and replace it with fresh mix.",
         "Flush the pot by running water through it for a couple of minutes, then let it drain.",
         "Feed at half strength, and switch to filtered water or rainwater if your tap water is hard."),
        ("A fuzzy white layer is something else: usually a harmless mould from soil that stays damp.",
         "Salt build-up is also a common cause of brown leaf tips, so fixing one often fixes both."),
    ),
    Problem(
        "no_growth",
        ("My {p} hasn't grown at all in months. Why?",
         "Why is my {p} not putting out any new leaves?",
         "My {p} seems stuck. How do I get it growing again?",
         "How can I make my {p} grow faster?"),
        {"any": "{A} that has stopped growing is usually short of light, short of food, or resting for the "
                "winter."},
        ("Check its light: it grows best in {light}, and a slow plant usually wants more.",
         "Feed it with a balanced liquid fertilizer at half strength every four weeks in spring and summer.",
         "Check the drainage hole; roots circling out of it mean it needs a pot one size larger."),
        ("Most houseplants slow down from late autumn to early spring, so a quiet winter is normal.",
         "More light is the single biggest boost you can give a slow plant."),
    ),
    Problem(
        "curling",
        ("Why are the leaves on my {p} curling?",
         "The leaves of my {p} are curling inward. What does it mean?",
         "My {p} has curled, slightly wrinkled leaves. What should I do?"),
        {"any": "Curling leaves on {a} are usually a sign of thirst or heat, with pests as the other suspect."},
        ("Check the soil, and water thoroughly if it is dry.",
         "Move it away from heaters, hot windows and air vents.",
         "Look under the leaves for pests such as spider mites or aphids."),
        ("Leaves usually flatten again within a day or two once the cause is fixed.",
         "Curling that starts on the newest leaves often points to pests feeding on the soft growth."),
    ),
    Problem(
        "rootbound",
        ("Roots are growing out of the bottom of my {p}'s pot. What should I do?",
         "How do I know if my {p} needs repotting?",
         "When and how should I repot my {p}?",
         "My {p} dries out in a day and roots are poking out of the drainage holes. Does it need a bigger pot?"),
        {"any": "Roots growing out of the drainage holes mean the {p} has filled its pot and needs more room."},
        ("Repot in spring or early summer, when the plant is actively growing.",
         "Choose a pot only two to five centimetres wider than the old one, with a drainage hole.",
         "Gently loosen circling roots and plant it at the same depth in {soil}.",
         "Water well, then wait until {gap} before watering again."),
        ("A pot that is far too big holds extra wet soil, and that is how root rot starts.",
         "Skip fertilizer for a month after repotting, since fresh mix already has nutrients."),
    ),
    Problem(
        "soil_mould",
        ("There is white fuzz growing on the soil of my {p}. Is it dangerous?",
         "Why is my {p}'s soil growing mould?",
         "I noticed fluffy white stuff on top of the soil in my {p}. What is it?"),
        {"any": "White fuzz on the soil of {a} is a harmless mould that grows when the surface stays damp."},
        ("Scrape off the fuzzy layer and throw it away.",
         "Let the soil dry more between waterings, and give the plant better airflow.",
         "Top up the pot with a little fresh, dry mix."),
        ("Mould on the soil is a watering signal, not a plant disease.",
         "A small fan in a stuffy room helps both the soil and the leaves dry out."),
    ),
]
PROBLEM_BY_KEY = {p.key: p for p in PROBLEMS}

# --- Care topics for one plant (light, water, pets, propagation, soil) -----------------------------

CARE_QUESTIONS = {
    "water": ("How often should I water my {p}?", "How much water does {a} need?",
              "What's the right way to water {a}?"),
    "light": ("How much light does {a} need?", "Where should I put my {p}?",
              "Can {a} live in a dark corner?"),
    "pets": ("Is {a} safe for cats?", "Is {a} toxic to dogs?", "I have a cat. Can I keep {a}?"),
    "propagate": ("How do I propagate {a}?", "Can I grow a new {p} from a cutting?",
                  "What is the easiest way to make more {p} plants?"),
    "soil": ("What soil should I use for {a}?", "What kind of potting mix does {a} like?"),
}


def care_answer(topic: str, plant: Plant) -> tuple[str, list[str], str]:
    """(diagnosis, steps, tip) for a care question about one plant, in the doctor's shape."""
    p, a = plant.name, with_article(plant.name)
    A = cap(a)
    if topic == "water":
        return (f"{A} likes to be watered {plant.water}.",
                ["Check the soil with a finger before every watering instead of following a calendar.",
                 "Water until it runs out of the drainage hole, then empty the saucer.",
                 "Water less in winter, when growth slows down."],
                plant.quirk)
    if topic == "light":
        dark = ("It copes with a dim corner better than most plants." if "low" in plant.light
                else "A dark corner will make it weak and leggy.")
        return (f"{A} grows best in {plant.light}. {dark}",
                ["Put it near a window where it gets plenty of daylight.",
                 "Keep it out of harsh midday sun unless it is used to it.",
                 "Turn the pot a little every week so it grows evenly."],
                "If new leaves come in smaller than the old ones, it is asking for more light.")
    if topic == "pets":
        if plant.pet_safe:
            return (f"The {p} is considered non-toxic to cats and dogs.",
                    ["It is fine to keep it within reach of pets.",
                     "Still discourage chewing, because eating lots of any plant can upset a pet's stomach.",
                     "Keep fertilizers and pest sprays stored away from pets."],
                    "Pet-safe plants include spider plants, calatheas, parlor palms and Boston ferns.")
        return (f"The {p} is toxic to cats and dogs if they chew it.",
                ["Keep it on a high shelf or in a room your pets cannot reach.",
                 "If a pet chews it, rinse its mouth with water and watch for drooling or vomiting.",
                 "Call your vet or a pet poison helpline if symptoms appear."],
                "Pet-safe alternatives include spider plants, calatheas, parlor palms and Boston ferns.")
    if topic == "propagate":
        return (f"You can propagate {a} {plant.propagate}.",
                ["Take cuttings or divide the plant in spring or summer, when it grows fastest.",
                 "Use clean, sharp scissors or a knife.",
                 "Keep the new plant warm and in bright indirect light while it roots."],
                "Roots usually appear within two to six weeks, so be patient.")
    if topic == "soil":
        return (f"{A} does best in {plant.soil}.",
                ["Always use a pot with a drainage hole.",
                 "Never use garden soil indoors, because it packs down and stays soggy.",
                 "Refresh the mix when you repot, every one to two years."],
                f"After repotting, water it {plant.water}.")
    raise ValueError(topic)


# --- General care topics (not about one plant) --------------------------------------------------------
# Each: questions, (diagnosis, steps, tip) for the doctor, and prose paragraphs for the corpus.

@dataclass(frozen=True)
class Topic:
    key: str
    questions: tuple[str, ...]
    diagnosis: str
    steps: tuple[str, ...]
    tip: str
    prose: tuple[str, ...]


TOPICS = [
    Topic("when_to_water",
          ("How do I know when to water my plants?", "How often should I water houseplants?"),
          "Water when the soil tells you to, not on a fixed schedule.",
          ("Push a finger into the soil up to the second knuckle.",
           "Water if it feels dry at that depth, and wait a few days if it feels damp.",
           "Water thoroughly until it drains, then empty the saucer."),
          "Plants in small pots, sunny spots and warm rooms dry out much faster than the rest.",
          ("Most houseplants are killed by kindness. A fixed watering day ignores the fact that a plant in a "
           "small pot by a sunny window drinks far more than the same plant in a big pot in a dim room. The "
           "simplest test is a finger pushed into the soil: if it feels dry a few centimetres down, water "
           "thoroughly until water runs from the drainage hole, and empty the saucer afterwards.",
           "Learning when to water is mostly learning to read the soil. Dry soil is lighter in colour and the pot "
           "feels light when you lift it. Damp soil is dark and heavy. Succulents want the pot to dry out "
           "completely, ferns and calatheas want it to stay lightly moist, and most other houseplants sit in "
           "between.")),
    Topic("indirect_light",
          ("What does bright indirect light mean?", "Which window is best for houseplants?"),
          "Bright indirect light is a spot that sees a lot of sky but little direct sun on the leaves.",
          ("Place the plant within a metre or two of an east- or west-facing window.",
           "Near a south-facing window, use a sheer curtain or keep the plant a few steps back.",
           "A north-facing window suits low-light plants such as ZZ plants and cast iron plants."),
          "If the plant casts a soft, blurry shadow at midday, the light is indirect.",
          ("Bright indirect light is the phrase on almost every plant label, and it simply means a spot with a "
           "wide view of the sky where the sun's rays rarely fall directly on the leaves. A metre or two from an "
           "east- or west-facing window is ideal for most tropical houseplants. A south-facing window is brighter "
           "and can scorch leaves in summer, while a north-facing window suits low-light plants.",
           "Light fades quickly with distance from a window. A plant three steps into the room may receive less "
           "than a quarter of the light it would get on the sill, even though the room looks bright to our eyes. "
           "Stretched stems and small new leaves are the plant's way of saying it needs more.")),
    Topic("repotting",
          ("How do I repot a houseplant?", "When is the best time to repot plants?"),
          "Repot when the roots have filled the pot, ideally in spring or early summer.",
          ("Water the plant a day before so the root ball slides out easily.",
           "Choose a new pot only two to five centimetres wider, with a drainage hole.",
           "Loosen circling roots, set the plant at the same depth and fill in with fresh mix.",
           "Water well and keep it out of strong sun for a week."),
          "Most houseplants only need repotting every one to two years.",
          ("Repotting is best done in spring or early summer, when the plant is growing and can recover quickly. "
           "Roots circling the bottom of the pot or poking out of the drainage hole are the clearest sign that "
           "it is time. Choose a pot only slightly larger than the old one, because a huge pot holds too much "
           "wet soil around a small root ball.",
           "To repot a plant, water it the day before, tip it out of its pot, and gently tease apart any roots "
           "that circle the root ball. Set it in the new pot at the same depth as before, fill around it with "
           "fresh mix, and water it in. A week in gentle light helps it settle.")),
    Topic("fertilizing",
          ("How often should I fertilize my houseplants?", "Do houseplants need fertilizer in winter?"),
          "Houseplants need a little food while they grow and almost none while they rest.",
          ("Use a balanced liquid fertilizer diluted to half strength.",
           "Feed every four weeks from spring to late summer.",
           "Stop feeding in autumn and winter, when growth slows."),
          "Too much fertilizer burns roots and leaves a white crust on the soil, so less is more.",
          ("Houseplants grow in a small amount of soil, so they slowly use up its nutrients. A balanced liquid "
           "fertilizer at half the strength on the label, given every four weeks in spring and summer, is "
           "plenty for most of them. In autumn and winter growth slows, and unused fertilizer only builds up as "
           "salts in the soil.",
           "Overfeeding is a more common mistake than underfeeding. Signs include brown leaf tips, a white crust "
           "on the soil and sudden wilting despite moist soil. Flushing the pot with plenty of water washes out "
           "the excess.")),
    Topic("humidity",
          ("How can I raise the humidity for my plants?", "Does misting help houseplants?"),
          "Many tropical houseplants like more humidity than a heated room gives them.",
          ("Group plants together so they share the moisture they release.",
           "Run a humidifier nearby during the heating season.",
           "Keep plants away from radiators and air vents."),
          "Misting only helps for a few minutes, so a humidifier is the better investment.",
          ("Ferns, calatheas, prayer plants and orchids come from humid forests, and the dry air of a heated home "
           "in winter shows up as crispy leaf edges. Grouping plants together raises the humidity around them a "
           "little, and a humidifier raises it a lot. Misting feels helpful, but the water evaporates within "
           "minutes.",
           "Bathrooms and kitchens are often the most humid rooms in a home, which makes them good places for "
           "ferns and other moisture lovers, provided there is enough light from a window.")),
    Topic("tap_water",
          ("Is tap water okay for houseplants?", "Should I use rainwater for my plants?"),
          "Tap water is fine for most houseplants, but a few sensitive ones prefer rainwater or filtered water.",
          ("Let tap water reach room temperature before using it.",
           "Use rainwater or filtered water for calatheas, spider plants and dracaenas.",
           "Flush the soil now and then to wash out salts that build up."),
          "Brown leaf tips on sensitive plants are often the first sign that the water is too hard.",
          ("For most houseplants, ordinary tap water at room temperature is perfectly fine. A few plants, such "
           "as calatheas, spider plants and dracaenas, react to the fluoride and dissolved minerals in tap water "
           "with brown leaf tips. Rainwater, filtered water or distilled water keeps them happier.",)),
    Topic("drainage",
          ("Does my plant pot need a drainage hole?", "Can I put a plant in a pot without holes?"),
          "Yes, a drainage hole is the single best protection against root rot.",
          ("Keep the plant in a plastic nursery pot with holes.",
           "Set that pot inside the decorative pot without holes.",
           "Tip out any water that collects at the bottom after watering."),
          "A layer of gravel in the bottom does not replace a drainage hole.",
          ("A drainage hole lets extra water escape after watering. Without one, water collects at the bottom of "
           "the pot, the soil stays soggy and the roots begin to rot. If you love a decorative pot without "
           "holes, use it as a cover pot and keep the plant in a plain nursery pot inside it.",
           "A layer of gravel at the bottom of a pot is often recommended, but it actually raises the wet zone "
           "of the soil closer to the roots. A drainage hole is the only real fix.")),
    Topic("vacation",
          ("How do I keep my plants alive while I'm on vacation?", "Who will water my plants when I travel?"),
          "Most houseplants survive a week or two alone with a little preparation.",
          ("Water everything thoroughly the day before you leave.",
           "Move plants back from sunny windows so they dry out more slowly.",
           "Group thirsty plants together, or set them on a tray of wet pebbles.",
           "For longer trips, use self-watering spikes or ask a neighbour."),
          "Succulents, snake plants and ZZ plants will happily go a month without water.",
          ("Before a trip, water your plants thoroughly and move them a little away from hot, sunny windows so "
           "they use water more slowly. Succulents, snake plants and ZZ plants can go weeks without water, while "
           "ferns and peace lilies need help on longer trips, such as a wicking string from a jug of water.",)),
    Topic("winter",
          ("How should I care for houseplants in winter?", "Why do my plants struggle in winter?"),
          "Winter brings less light, drier air and slower growth, so plants need less of everything.",
          ("Water less often, because the soil dries more slowly.",
           "Move plants closer to the windows to make up for the short days.",
           "Keep them away from cold drafts and hot radiators.",
           "Stop fertilizing until spring."),
          "Wipe dust off the leaves, since every bit of light counts in winter.",
          ("In winter the days are short, the light is weak and heated air is dry. Most houseplants slow down "
           "and need much less water than in summer, so it is easy to overwater them. Moving them a little "
           "closer to the window helps, as long as the leaves do not touch cold glass.",
           "Cold drafts from doors and windows and hot air from radiators are the two big winter stresses. A spot "
           "with steady temperatures, between about 16 and 24 degrees Celsius, suits most tropical plants.")),
    Topic("cleaning",
          ("Should I clean my plant's leaves?", "How do I get dust off my plant leaves?"),
          "Yes, dusty leaves catch less light and hide pests.",
          ("Wipe large leaves gently with a soft, damp cloth.",
           "Rinse small-leaved plants under a lukewarm shower.",
           "Skip leaf shine products, which can clog the leaf surface."),
          "Cleaning day is also the perfect time to check under the leaves for pests.",
          ("Dust on leaves acts like a thin curtain, cutting the light a plant can use. Large-leaved plants such "
           "as rubber plants and fiddle leaf figs benefit from a wipe with a damp cloth every few weeks, and "
           "smaller plants can be rinsed under a lukewarm shower. Leaf shine sprays are best avoided.",)),
    Topic("water_propagation",
          ("How do I root cuttings in water?", "Can I propagate plants in water?"),
          "Many vining houseplants root easily in a glass of water.",
          ("Cut a stem just below a node, the bump where a leaf meets the stem.",
           "Remove the lowest leaves and stand the cutting in a glass of water.",
           "Change the water every week and keep it in bright indirect light.",
           "Pot it up in soil once the roots are a few centimetres long."),
          "Pothos, philodendrons and monsteras are the easiest plants to start with.",
          ("Water propagation is the easiest way to make new plants from pothos, philodendrons, monsteras and "
           "ivy. A cutting taken just below a node, with the lowest leaves removed, will grow roots in a glass of "
           "water within a few weeks. Change the water weekly and pot the cutting in soil once its roots are a "
           "few centimetres long.",)),
    Topic("low_light",
          ("What plants grow well in low light?", "Which houseplant is best for a dark room?"),
          "A few tough plants cope with low light, though none will grow in a room with no window.",
          ("Try a ZZ plant, a snake plant, a cast iron plant or a pothos.",
           "Place it where it can still see the sky through a window.",
           "Water less, because plants in low light use water slowly."),
          "Low-light plants survive in dim rooms but grow much faster with more light.",
          ("No plant truly likes darkness, but some tolerate it. ZZ plants, snake plants, cast iron plants, "
           "pothos and parlor palms all manage in a dim room, as long as they can see a window. They grow slowly "
           "there and use little water, so the biggest risk is overwatering.",)),
    Topic("beginner",
          ("What is the easiest houseplant for a beginner?", "Which houseplants are hard to kill?"),
          "The easiest houseplants forgive missed waterings and modest light.",
          ("Start with a pothos, a snake plant, a ZZ plant or a spider plant.",
           "Put it in a bright spot out of harsh direct sun.",
           "Water only when the soil is dry a few centimetres down."),
          "Buy one plant, learn its habits, and add more once it is thriving.",
          ("A pothos, a snake plant, a ZZ plant and a spider plant are the classic first houseplants. They "
           "forgive missed waterings, cope with average light and show clearly when something is wrong. Most "
           "beginners lose plants to overwatering, so checking the soil before watering is the best habit to "
           "learn.",)),
    Topic("new_plant",
          ("What should I do when I bring a new plant home?", "How do I choose a healthy plant at the shop?"),
          "A new plant needs a quick health check and a little time to settle in.",
          ("Look under the leaves and in the leaf joints for pests before you buy.",
           "Keep it apart from your other plants for two weeks.",
           "Wait a few weeks before repotting, unless it is badly rootbound."),
          "A few dropped leaves in the first weeks are normal while it adjusts to your home.",
          ("Before bringing a plant home, check the undersides of the leaves and the leaf joints for pests, and "
           "look for firm stems and fresh new growth. At home, keep it apart from your other plants for a couple "
           "of weeks. Shop plants often lose a leaf or two while they adjust to a darker, drier house.",)),
]


# --- Rendering --------------------------------------------------------------------------------------

def doctor_answer(diagnosis: str, steps: list[str], tip: str) -> str:
    """The fine-tuning style: marker + diagnosis, numbered steps, one-line tip."""
    # The marker has a line of its own, so the diagnosis starts where the base model's answers start.
    # After a marker on the same line, a 30-step fine-tune tends to pick whatever diagnosis is most
    # common in the data rather than the one the question asks for.
    lines = [MARKER, diagnosis]
    lines += [f"{i}. {step}" for i, step in enumerate(steps, 1)]
    lines.append(f"Tip: {tip}")
    return "\n".join(lines)


def prose_answer(rng: random.Random, diagnosis: str, steps: list[str], tip: str) -> str:
    """The same facts as one plain paragraph: what the demo base model is pretrained on."""
    first, *rest = steps
    opener = rng.choice(["First,", "To begin,", "The first step:", "To fix it,"])
    parts = [diagnosis, f"{opener} {low(first)}"]
    connectives = ["Then", "After that,", "Next,", "Also,"]
    for i, step in enumerate(rest):
        word = "Finally," if i == len(rest) - 1 and len(rest) > 1 else rng.choice(connectives)
        parts.append(f"{word} {low(step)}")
    parts.append(tip)
    return " ".join(parts)


def plant_profile(rng: random.Random, plant: Plant) -> str:
    """A short encyclopedia-style paragraph about one plant, in one of several orderings."""
    p, A = plant.name, cap(with_article(plant.name))
    pets = ("It is considered non-toxic to cats and dogs." if plant.pet_safe
            else "It is toxic to cats and dogs if chewed, so keep it out of their reach.")
    humid = ("It appreciates high humidity, so it does well near other plants or a humidifier."
             if plant.humid else "Ordinary room humidity suits it well.")
    sentences = [
        f"The {p} ({plant.latin}) is {plant.looks}.",
        rng.choice([f"It grows best in {plant.light}.", f"Give it {plant.light}.",
                    f"{A} is happiest in {plant.light}."]),
        rng.choice([f"Water it {plant.water}.", f"The rule for watering is simple: water it {plant.water}.",
                    f"It likes to be watered {plant.water}."]),
        rng.choice([f"Pot it in {plant.soil}.", f"It does best in {plant.soil}.",
                    f"The right soil is {plant.soil}."]),
        humid,
        pets,
        rng.choice([f"You can propagate it {plant.propagate}.", f"New plants are made {plant.propagate}.",
                    f"To make more plants, propagate it {plant.propagate}."]),
        plant.quirk,
    ]
    head, body = sentences[0], sentences[1:]
    rng.shuffle(body)  # a different order each time keeps the model from memorising one fixed essay
    return " ".join([head] + body)


# --- The two products ---------------------------------------------------------------------------------

# Held out of the fine-tuning data (and of the base model's question-and-answer prose), so a demo can
# show the style change on questions the fine-tune never saw.
HELD_OUT = [
    ("rubber plant", "yellow_leaves", "The lower leaves on my rubber plant are turning yellow. What should I do?"),
    ("peace lily", "fungus_gnats", "There are tiny black flies around my peace lily. How do I get rid of them?"),
    ("jade plant", "leggy", "My jade plant is getting long, stretched stems. What's wrong?"),
]
HELD_OUT_PROMPTS = [q for _, _, q in HELD_OUT]
_HELD_OUT_PAIRS = {(p, k) for p, k, _ in HELD_OUT}

SYSTEM_PROMPTS = [
    "You are a friendly houseplant care assistant.",
    "You help beginners keep their houseplants alive. Be practical and brief.",
    "You answer questions about indoor plants.",
    "You are an expert in houseplant problems and pests.",
]

FOLLOW_UPS = {
    "water": ("Thanks! How often should I water it from now on?", "And how often should I water it normally?"),
    "light": ("Got it. Where should I put it?", "Thanks. How much light does it need?"),
    "pets": ("Is it safe around my cat?", "One more thing: is it toxic to dogs?"),
    "propagate": ("Can I take cuttings from it?", "Thanks! How do I make more of them?"),
    "soil": ("Should I change the soil too?", "What soil should I use when I repot it?"),
}


def _problem_pairs(rng: random.Random) -> list[tuple[Plant, Problem]]:
    pairs = [(pl, pr) for pl in PLANTS for pr in PROBLEMS if (pl.name, pr.key) not in _HELD_OUT_PAIRS]
    rng.shuffle(pairs)
    return pairs


def _problem_exchange(rng: random.Random, plant: Plant, problem: Problem, render) -> tuple[str, str]:
    question = fill(rng.choice(problem.questions), plant)
    steps = problem.steps_for(plant)
    steps = steps[:min(len(steps), rng.choice([3, 3, 4]))]
    tip = fill(rng.choice(problem.tips), plant)
    return question, render(problem.diagnose(plant), steps, tip)


def build_dataset(seed: int = 0, n_problem: int = 112, n_care: int = 44, n_general: int = 22,
                  n_multi: int = 22, n_system: int = 36) -> list[dict]:
    """The fine-tuning rows: {"messages": [...]} with every answer in the Plant doctor style."""
    rng = random.Random(seed)
    doctor = doctor_answer
    rows: list[list[dict]] = []

    pairs = _problem_pairs(rng)
    for plant, problem in pairs[:n_problem]:
        q, a = _problem_exchange(rng, plant, problem, doctor)
        rows.append([{"role": "user", "content": q}, {"role": "assistant", "content": a}])

    care = [(pl, t) for pl in PLANTS for t in CARE_QUESTIONS]
    rng.shuffle(care)
    for plant, topic in care[:n_care]:
        q = fill(rng.choice(CARE_QUESTIONS[topic]), plant)
        a = doctor(*care_answer(topic, plant))
        rows.append([{"role": "user", "content": q}, {"role": "assistant", "content": a}])

    general = [(t, q) for t in TOPICS for q in t.questions]
    rng.shuffle(general)
    for topic, q in general[:n_general]:
        a = doctor(topic.diagnosis, list(topic.steps), topic.tip)
        rows.append([{"role": "user", "content": q}, {"role": "assistant", "content": a}])

    # Multi-turn: a problem, then a follow-up about the same plant's everyday care.
    for plant, problem in pairs[n_problem:n_problem + n_multi]:
        q1, a1 = _problem_exchange(rng, plant, problem, doctor)
        topic = rng.choice(list(FOLLOW_UPS))
        q2 = rng.choice(FOLLOW_UPS[topic])
        a2 = doctor(*care_answer(topic, plant))
        rows.append([{"role": "user", "content": q1}, {"role": "assistant", "content": a1},
                     {"role": "user", "content": q2}, {"role": "assistant", "content": a2}])

    rng.shuffle(rows)
    for messages in rows[:n_system]:
        messages.insert(0, {"role": "system", "content": rng.choice(SYSTEM_PROMPTS)})
    rng.shuffle(rows)
    return [{"messages": m} for m in rows]


def build_golden(seed: int = 0, n_problem: int = 112, n_multi: int = 22, unseen: int = 3, taught: int = 9) -> list[dict]:
    """Golden questions for scoring the demo fine-tune (studio eval), each with the answer the Plant doctor
    would give, and never a question the fine-tuning rows ask: the HELD_OUT pairs first, then `unseen`
    more plant/problem pairs the dataset never uses, then `taught` pairs it does teach, asked in words
    its rows never use (what a user's golden questions are: their own domain, asked their own way)."""
    rng = random.Random(seed)
    pairs = _problem_pairs(rng)  # build_dataset draws the same pairs first
    problems = {p.key: p for p in PROBLEMS}
    held = [(PLANT_BY_NAME[name], problems[key], question) for name, key, question in HELD_OUT]
    asked = {m[0]["content"] if m[0]["role"] == "user" else m[1]["content"]
             for m in (row["messages"] for row in build_dataset(seed, n_problem=n_problem, n_multi=n_multi))}
    ask = random.Random(seed + 1)
    chosen = held + [(pl, pr, fill(ask.choice(pr.questions), pl)) for pl, pr in pairs[n_problem + n_multi:][:unseen]]
    for plant, problem in pairs[:n_problem]:
        if len(chosen) == len(held) + unseen + taught:
            break
        fresh = [q for q in (fill(t, plant) for t in problem.questions) if q not in asked]
        if fresh:
            chosen.append((plant, problem, fresh[0]))
    rows = []
    for plant, problem, question in chosen:
        answer = doctor_answer(problem.diagnose(plant), problem.steps_for(plant)[:3], fill(problem.tips[0], plant))
        rows.append({"messages": [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]})
    return rows


def build_preferences(seed: int = 0, n: int = 96) -> list[dict]:
    """Preference pairs for the demo's DPO run, in TRL's explicit-prompt layout: a question, the answer in
    the Plant doctor's shape (chosen) and the same facts as plain prose (rejected: how the base answers).
    Plant/problem pairs the fine-tuning rows ask about, in fresh words where the templates have them;
    never the HELD_OUT pairs, so the golden questions stay unseen."""
    rng = random.Random(seed + 2)
    rows = []
    for plant, problem in _problem_pairs(rng)[:n]:
        question = fill(rng.choice(problem.questions), plant)
        steps = problem.steps_for(plant)
        steps = steps[:min(len(steps), rng.choice([3, 3, 4]))]
        diagnosis, tip = problem.diagnose(plant), fill(rng.choice(problem.tips), plant)
        rows.append({"prompt": [{"role": "user", "content": question}],
                     "chosen": [{"role": "assistant", "content": doctor_answer(diagnosis, steps, tip)}],
                     "rejected": [{"role": "assistant", "content": prose_answer(rng, diagnosis, steps, tip)}]})
    return rows


# Everyday sentences sprinkled into the corpus. Besides being true, they make sure the base model has
# seen ordinary words such as "doctor", "says" and "Tip" (as real base models have), so the fine-tune
# only has to learn the new *style*, not embeddings for words it never met; LoRA cannot train embeddings.
GENERIC_ADVICE = [
    "Whatever the label says, check the soil before you water.",
    "Every experienced grower says the same thing: more houseplants die from too much water than from too little.",
    "If a child chews the leaves of a toxic plant, call your doctor or a poison helpline.",
    "Tip the pot on its side and slide the plant out when you want to look at the roots.",
    "Tip out the water that collects in the saucer half an hour after watering.",
    "A plant that droops in the evening and recovers by morning is usually just warm, not sick.",
    "Plants grow toward the light, so a quarter turn every week keeps them straight.",
    "New leaves tell you more about a plant's health than old ones.",
    "A common rule says to water once a week, but plants do not read calendars.",
    "What a plant label says about light is usually optimistic; most rooms are darker than they look.",
    "If the sap of a fig or a dieffenbachia irritates your skin, wash it off, and see a doctor if a rash stays.",
    "Plant labels are a starting point; the plant itself tells you what it needs.",
]

PROBLEM_TITLES = {
    "yellow_leaves": "yellow leaves", "brown_tips": "brown leaf tips", "drooping": "drooping leaves",
    "leggy": "leggy growth", "leaf_drop": "sudden leaf drop", "mealybugs": "mealybugs",
    "spider_mites": "spider mites", "fungus_gnats": "fungus gnats", "scale": "scale insects",
    "root_rot": "root rot", "sunburn": "sunburnt leaves", "salt_crust": "crusty soil",
    "no_growth": "a plant that will not grow", "curling": "curling leaves", "rootbound": "a rootbound plant",
    "soil_mould": "mouldy soil",
}

CARE_TITLES = {"water": "watering", "light": "light", "pets": "pets", "propagate": "propagation", "soil": "soil"}


def guide(rng: random.Random, heads: list[str], intro: str, steps: list[str], tip: str) -> str:
    """A how-to article with a numbered list: ordinary formatting that any base model has seen."""
    head = rng.choice(heads)
    closing = rng.choice([tip, f"Good to know: {tip}", f"{tip} {rng.choice(GENERIC_ADVICE)}"])
    return "\n".join([head, intro, *[f"{i}. {s}" for i, s in enumerate(steps, 1)], closing])


def build_corpus(seed: int = 0, profile_variants: int = 6) -> dict[str, str]:
    """Pretraining text, by file name: prose paragraphs and how-to guides. No chat markup, and never
    the fine-tuning style (the "Plant doctor says:" marker with diagnosis, steps and a "Tip:" line)."""
    rng = random.Random(seed + 1)
    plants = []
    for _ in range(profile_variants):
        for pl in PLANTS:
            text = plant_profile(rng, pl)
            if rng.random() < 0.3:
                text += " " + rng.choice(GENERIC_ADVICE)
            plants.append(text)
    rng.shuffle(plants)

    problems, guides = [], []
    for plant in PLANTS:
        for problem in PROBLEMS:
            steps = problem.steps_for(plant)
            problems.append(prose_answer(rng, problem.diagnose(plant), steps, fill(rng.choice(problem.tips), plant)))
            title = f"{PROBLEM_TITLES[problem.key]} ({plant.name})"
            heads = [f"How to deal with {title}", f"Guide: {title}", f"{cap(title)}: what to do",
                     f"Plant guide: {title}"]
            guides.append(guide(rng, heads, problem.diagnose(plant), steps, fill(rng.choice(problem.tips), plant)))
    for plant in PLANTS:
        for topic, word in CARE_TITLES.items():
            heads = [f"{cap(plant.name)} care: {word}", f"Caring for {with_article(plant.name)}: {word}",
                     f"Plant care: {plant.name}, {word}"]
            guides.append(guide(rng, heads, *care_answer(topic, plant)))
    for topic in TOPICS:
        guides.append(guide(rng, list(topic.questions), topic.diagnosis, list(topic.steps), topic.tip))
    rng.shuffle(problems)
    rng.shuffle(guides)

    care = []
    for plant in PLANTS:
        for topic in CARE_QUESTIONS:
            care.append(prose_answer(rng, *care_answer(topic, plant)))
    for topic in TOPICS:
        care.extend(topic.prose)
        care.append(prose_answer(rng, topic.diagnosis, list(topic.steps), topic.tip))
    rng.shuffle(care)
    join = lambda docs: "\n\n".join(docs) + "\n"  # noqa: E731  (one blank line between documents)
    return {"plants.txt": join(plants), "problems.txt": join(problems), "guides.txt": join(guides),
            "care.txt": join(care)}


def build_prose_qa(seed: int = 0, n: int = 2000) -> list[list[dict]]:
    """Questions answered in plain prose (no marker, no steps), as chat messages.

    Pretraining on a share of these teaches the base model the chat markup and when to stop (a turn
    ends with <|im_end|>), like the instruct models users start from; the fine-tune then only has
    to change the answer style. The held-out questions are left out here too.
    """
    rng = random.Random(seed + 2)
    out = []
    # Ordinary chat openers, so the model learns to answer the question whatever comes first in the
    # turn. (The fine-tune's "Plant doctor says:" is then just a new opener, not a new situation.)
    openers = ["Good question. ", "Sure. ", "Happy to help. ", "Here is what usually happens. ",
               "Don't worry, this is common. ", "Let's sort it out. "]
    pairs = _problem_pairs(rng)
    care = [(pl, t) for pl in PLANTS for t in CARE_QUESTIONS]
    prose = lambda d, s, t: prose_answer(rng, d, s, t)  # noqa: E731
    while len(out) < n:
        kind = rng.random()
        if kind < 0.6:
            plant, problem = rng.choice(pairs)
            q, a = _problem_exchange(rng, plant, problem, prose)
        elif kind < 0.9:
            plant, topic = rng.choice(care)
            q = fill(rng.choice(CARE_QUESTIONS[topic]), plant)
            a = prose(*care_answer(topic, plant))
        else:
            topic = rng.choice(TOPICS)
            q = rng.choice(topic.questions)
            a = rng.choice(topic.prose)
        if rng.random() < 0.4:
            a = rng.choice(openers) + a
        messages = [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
        if rng.random() < 0.2:
            messages.insert(0, {"role": "system", "content": rng.choice(SYSTEM_PROMPTS)})
        out.append(messages)
    return out
