"""Writes demo_catalogue.jsonl and demo_interactions.jsonl (run from anywhere; seeded, so the
files are reproducible). Every title and description below was written for this project."""

from __future__ import annotations

import json
import random
from pathlib import Path

HERE = Path(__file__).resolve().parent

CATALOGUE = {
    "Cooking": [
        (
            "Weeknight Pasta",
            "Twenty quick pasta dinners built from pantry staples, each ready in under thirty minutes.",
        ),
        (
            "The Sourdough Year",
            "A baker's month-by-month guide to keeping a starter alive and baking open-crumb loaves.",
        ),
        (
            "Spice Route Kitchen",
            "Curries, dals and flatbreads from India, Sri Lanka and Malaysia, with a guide to whole spices.",
        ),
        (
            "Knife Skills 101",
            "A video course on holding, sharpening and using a chef's knife safely and fast.",
        ),
        (
            "Plant-Based Basics",
            "Vegetarian and vegan staples: beans, grains, tofu and roasted vegetables done well.",
        ),
        (
            "Fermentation at Home",
            "Kimchi, sauerkraut, kombucha and miso explained with simple jars and a little patience.",
        ),
        (
            "Sunday Roast",
            "Roasting meat and vegetables for a crowd, with gravy, timings and leftovers sorted.",
        ),
        (
            "Street Food of Mexico",
            "Tacos, tamales and salsas from market stalls, with tortillas pressed by hand.",
        ),
        (
            "Baking with Kids",
            "Biscuits, muffins and birthday cakes simple enough for young bakers to lead.",
        ),
        (
            "The Mindful Cook Podcast",
            "Weekly conversations with chefs about seasonal produce and wasting less food.",
        ),
        (
            "Japanese Home Cooking",
            "Rice, miso soup, grilled fish and pickles: the everyday Japanese table.",
        ),
        (
            "Cake Decorating Masterclass",
            "Buttercream, piping and sugar flowers for celebration cakes that look professional.",
        ),
        ("One-Pot Meals", "Stews, braises and traybakes that leave one pan to wash."),
        (
            "Coffee Brewing Guide",
            "Pour-over, espresso and cold brew: grind size, ratios and tasting notes.",
        ),
        (
            "Mediterranean Table",
            "Olive oil, grilled fish, salads and mezze from Greece, Italy and Lebanon.",
        ),
    ],
    "Space": [
        (
            "Cosmos for Beginners",
            "A friendly tour of planets, stars and galaxies for readers new to astronomy.",
        ),
        (
            "Backyard Telescope Guide",
            "Choosing and using a first telescope to find the Moon, Saturn's rings and nebulae.",
        ),
        (
            "The Race to the Moon",
            "The Apollo programme told through the engineers and astronauts who flew it.",
        ),
        (
            "Black Holes Explained",
            "What happens at the event horizon, told with analogies instead of equations.",
        ),
        ("Mars: The Red Frontier", "Rovers, water ice and the plans to send people to Mars."),
        (
            "Night Sky Podcast",
            "Each episode points out what to look for in this month's night sky.",
        ),
        (
            "Rocket Science Made Simple",
            "How rockets work: thrust, orbits and why staging matters, for curious readers.",
        ),
        (
            "Life on Other Worlds",
            "Astrobiology and the search for life on moons like Europa and Enceladus.",
        ),
        (
            "Astrophotography Course",
            "Photographing the Milky Way and deep-sky objects with a camera and tracker.",
        ),
        (
            "The Space Station Diaries",
            "A documentary series following a crew through six months in orbit.",
        ),
        (
            "Exoplanet Hunters",
            "How astronomers find planets around other stars, and what they have found.",
        ),
        (
            "Stargazing with Binoculars",
            "Constellations, star clusters and comets you can see with ordinary binoculars.",
        ),
        (
            "The Story of the Universe",
            "From the Big Bang to galaxies: cosmology as one readable story.",
        ),
        (
            "Satellites and Us",
            "How satellites give us GPS, weather forecasts and the internet in remote places.",
        ),
        ("Women of NASA", "Biographies of the mathematicians and engineers behind the space age."),
    ],
    "Music": [
        (
            "Jazz Standards Songbook",
            "Lead sheets and backstories for fifty standards every jazz player learns.",
        ),
        (
            "Guitar from Zero",
            "A beginner course: chords, strumming and your first five songs on acoustic guitar.",
        ),
        ("The Blue Note Years", "The record label that shaped modern jazz, album by album."),
        (
            "Piano Improvisation",
            "Scales, voicings and comping so you can improvise over chord changes.",
        ),
        (
            "Music Theory Podcast",
            "Short episodes that explain harmony, rhythm and form with examples.",
        ),
        (
            "Home Recording Studio",
            "Microphones, interfaces and mixing to record music in a spare room.",
        ),
        (
            "Classical Music for Newcomers",
            "Where to start with Bach, Beethoven and Debussy, and how to listen.",
        ),
        ("Drumming Fundamentals", "Grooves, fills and timing exercises for beginner drummers."),
        (
            "Songwriting Workshop",
            "Writing melodies and lyrics that hold together, from hook to bridge.",
        ),
        ("Vinyl Collector's Handbook", "Pressings, turntables and caring for a record collection."),
        (
            "Modal Jazz Explained",
            "Kind of Blue and the move from chord changes to modes, explained for players.",
        ),
        (
            "Electronic Music Production",
            "Synthesizers, samplers and arrangement in a digital audio workstation.",
        ),
        (
            "Sing with Confidence",
            "Breathing, pitch and warm-ups for people who want to sing without fear.",
        ),
        (
            "History of the Blues",
            "From the Mississippi Delta to Chicago: the music under rock and soul.",
        ),
        ("Ukulele in a Weekend", "Four chords, a dozen songs and a strum that sounds right."),
    ],
    "Outdoors": [
        ("Hiking for Beginners", "Boots, layers, maps and pacing for your first day hikes."),
        (
            "Wild Camping Guide",
            "Choosing a pitch, staying warm and leaving no trace on overnight trips.",
        ),
        (
            "Mountain Navigation",
            "Map and compass skills for hills when the path and the phone signal disappear.",
        ),
        ("Trail Running Basics", "Shoes, hills and training plans for running off-road."),
        ("Birdwatching Field Guide", "Identifying common birds by shape, song and habitat."),
        ("Kayaking Essentials", "Strokes, safety and rescues for calm-water kayakers."),
        (
            "The Long Walk Podcast",
            "Stories from people who walked across countries and continents.",
        ),
        (
            "Rock Climbing Indoors and Out",
            "From climbing walls to outdoor crags: technique, ropes and safety.",
        ),
        (
            "Foraging Through the Seasons",
            "Wild greens, berries and mushrooms to find safely, month by month.",
        ),
        ("Cycling Touring", "Planning and packing for multi-day bike trips on roads and gravel."),
        ("Winter Hillwalking", "Crampons, ice axes and avalanche awareness for snowy hills."),
        (
            "National Parks of the World",
            "A photographic journey through fifty protected landscapes.",
        ),
        ("Outdoor First Aid", "Treating sprains, cuts, cold and heat when help is hours away."),
        (
            "Paddleboarding Course",
            "Balance, turns and reading the water on a stand-up paddleboard.",
        ),
        ("Survival Skills", "Shelter, fire, water and signalling when a trip goes wrong."),
    ],
    "Programming": [
        (
            "Python Crash Course",
            "Variables, loops, functions and a first project in Python, for complete beginners.",
        ),
        ("Web Development Bootcamp", "HTML, CSS and JavaScript to build and publish a website."),
        ("Data Science with Pandas", "Cleaning, joining and plotting data tables in Python."),
        (
            "Machine Learning Foundations",
            "Regression, classification and evaluation with scikit-learn.",
        ),
        (
            "SQL for Analysts",
            "Queries, joins and window functions for answering business questions.",
        ),
        ("Git and GitHub", "Version control from first commit to pull requests and code review."),
        ("Clean Code Habits", "Naming, small functions and tests that keep code easy to change."),
        (
            "Deep Learning Explained",
            "Neural networks, backpropagation and transformers without heavy maths.",
        ),
        ("The Developer Podcast", "Interviews with engineers about careers, tools and hard bugs."),
        ("Rust for Systems Programming", "Ownership, borrowing and fast safe code in Rust."),
        (
            "Building APIs",
            "Designing, documenting and testing HTTP APIs that other teams enjoy using.",
        ),
        ("Linux Command Line", "Files, pipes, processes and shell scripts on the Linux terminal."),
        ("Algorithms Made Visual", "Sorting, searching and graphs explained with drawings."),
        ("Mobile App Development", "Building and releasing a first app for phones."),
        (
            "Cloud Computing Basics",
            "Servers, containers and storage in the cloud, explained plainly.",
        ),
    ],
    "Finance": [
        ("Budgeting Made Easy", "A simple monthly budget that survives real life."),
        ("Investing 101", "Shares, bonds and index funds explained for first-time investors."),
        ("Retirement Planning", "Pensions, savings rates and how much is enough to stop working."),
        ("The Money Podcast", "Weekly questions from listeners about saving, debt and investing."),
        ("Get Out of Debt", "A step-by-step plan for paying off credit cards and loans."),
        (
            "Understanding the Stock Market",
            "How markets move, what drives prices, and what to ignore.",
        ),
        ("Personal Taxes Explained", "Income tax, allowances and records to keep, without jargon."),
        ("Buying Your First Home", "Deposits, mortgages and surveys for first-time buyers."),
        ("Frugal Living", "Spending less on food, energy and subscriptions without feeling poor."),
        ("Small Business Accounting", "Bookkeeping, invoices and cash flow for sole traders."),
        (
            "Behavioural Finance",
            "Why people make money mistakes, and how to avoid the common ones.",
        ),
        ("Financial Independence", "Saving hard and investing simply to buy back your time."),
        (
            "Crypto Without the Hype",
            "What blockchains do and what the risks of cryptocurrencies are.",
        ),
        (
            "Teaching Kids About Money",
            "Pocket money, saving jars and first bank accounts for children.",
        ),
        ("Ethical Investing", "Funds and shares chosen for environmental and social impact."),
    ],
    "History": [
        ("Ancient Rome", "The republic, the empire and daily life in the city of Rome."),
        ("The Silk Roads", "Trade, ideas and empires along the routes between China and Europe."),
        ("World War Two in Colour", "A documentary series of restored colour film from the war."),
        ("The History Podcast", "Each episode tells one turning point in history in half an hour."),
        ("Medieval Castles", "How castles were built, defended and lived in."),
        ("The Industrial Revolution", "Steam, factories and cities that changed how people work."),
        ("Egypt of the Pharaohs", "Pyramids, hieroglyphs and the long history of ancient Egypt."),
        ("The Age of Exploration", "Sailors and mapmakers who crossed oceans in wooden ships."),
        ("Revolutions", "France, America, Haiti and Russia: why ordinary people rose up."),
        ("A History of Medicine", "From herbal remedies to vaccines and modern surgery."),
        ("The Vikings", "Raiders, traders and settlers from Scandinavia."),
        ("The Cold War", "Spies, space races and nuclear standoffs between two superpowers."),
        ("Great Inventions", "The printing press, the telephone and the stories behind them."),
        ("Ancient Greece", "Democracy, philosophy and theatre in the Greek city-states."),
        ("History of Science", "How people learned to test ideas, from Galileo to Darwin."),
    ],
    "Gardening": [
        ("Grow Your Own Vegetables", "Planning beds, sowing and harvesting a year of vegetables."),
        ("Balcony Gardening", "Herbs, tomatoes and flowers in pots on a small balcony."),
        ("Houseplants That Thrive", "Light, watering and repotting for healthy indoor plants."),
        ("Composting Guide", "Turning kitchen and garden waste into rich compost."),
        (
            "The Gardening Podcast",
            "Seasonal jobs and listener questions from experienced gardeners.",
        ),
        ("Wildlife Garden", "Ponds, hedges and flowers that bring bees, birds and hedgehogs."),
        ("Pruning Made Simple", "When and how to prune roses, fruit trees and shrubs."),
        ("Growing Fruit", "Apples, berries and figs in gardens of any size."),
        ("Garden Design Course", "Layouts, paths and planting schemes for a garden that works."),
        ("Organic Pest Control", "Keeping slugs and aphids down without chemicals."),
        ("Seed Saving", "Collecting and storing seeds from your own plants."),
        ("Japanese Gardens", "Stone, water and moss: the ideas behind Japanese garden design."),
        ("Cut Flower Patch", "Growing flowers for bouquets from spring to autumn."),
        ("Lawn Care", "Mowing, feeding and repairing a lawn, or replacing it with meadow."),
        ("Greenhouse Growing", "Tomatoes, chillies and seedlings under glass."),
    ],
}
FORMATS = ("book", "course", "podcast", "video")


def main() -> None:
    rng = random.Random(7)
    items = []
    for category, entries in CATALOGUE.items():
        for title, description in entries:
            low = f"{title} {description}".lower()
            kind = (
                "podcast" if "podcast" in low
                else "course" if any(w in low for w in ("course", "bootcamp", "masterclass", "workshop"))
                else "video" if any(w in low for w in ("documentary", "video"))
                else "book"
            )  # fmt: skip
            items.append(
                {
                    "id": f"demo-{len(items) + 1:03d}",
                    "title": title,
                    "description": description,
                    "categories": [category, kind],
                    "price": round(rng.choice([0, 4.99, 9.99, 14.99, 24.99, 39.0]), 2),
                }
            )
    with (HERE / "demo_catalogue.jsonl").open("w", encoding="utf-8") as f:
        for item in items:
            f.write(json.dumps(item) + "\n")

    by_category: dict[str, list[str]] = {}
    for item in items:
        by_category.setdefault(item["categories"][0], []).append(item["id"])
    categories = list(by_category)
    start = 1_790_000_000  # 2026-09-21 UTC
    events = []
    for n in range(1, 61):
        user = f"u{n:02d}"
        liked = rng.sample(categories, 2)
        t = start + rng.randint(0, 30 * 86_400)
        for _ in range(rng.randint(6, 18)):
            category = rng.choice(liked) if rng.random() < 0.85 else rng.choice(categories)
            pool = by_category[category]
            # A few items in each category are much more popular than the rest.
            item = pool[min(int(rng.expovariate(0.25)), len(pool) - 1)]
            t += rng.randint(600, 3 * 86_400)
            kind = rng.choices(["view", "click", "rating", "purchase"], [5, 3, 2, 1])[0]
            event = {"user": user, "item": item, "kind": kind, "timestamp": t}
            if kind == "rating":
                event["rating"] = (
                    rng.choice([3, 4, 4, 5, 5]) if category in liked else rng.choice([1, 2, 3])
                )
            events.append(event)
    events.sort(key=lambda e: e["timestamp"])
    with (HERE / "demo_interactions.jsonl").open("w", encoding="utf-8") as f:
        for event in events:
            f.write(json.dumps(event) + "\n")
    print(f"{len(items)} items, {len(events)} events")


if __name__ == "__main__":
    main()
