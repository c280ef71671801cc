"""A small labeled set of tool-calling decisions: for each prompt, whether a model given these
tools under ``tool_choice: "auto"`` should call one (and which) or answer in text.

Used by ``bench/tool_choice.py`` to measure decision accuracy and by the tests; written here
for this project (no external source). Tool results already in the conversation count as
"answer": the call was made, the model should now reply.
"""

from __future__ import annotations

from typing import Any


def _fn(fn_name: str, description: str, **props: str) -> dict[str, Any]:
    return {"type": "function", "function": {
        "name": fn_name, "description": description,
        "parameters": {"type": "object", "properties": {k: {"type": "string", "description": v}
                                                        for k, v in props.items()},
                       "required": list(props)}}}


WEATHER = _fn("get_weather", "Current weather for a city", city="the city name")
STOCK = _fn("get_stock_price", "Latest price of a stock", ticker="the ticker symbol, e.g. AAPL")
EMAIL = _fn("send_email", "Send an email", to="recipient address", subject="subject line", body="message text")
FLIGHTS = _fn("search_flights", "Find flights between two cities on a date", origin="departure city",
              destination="arrival city", date="the date, YYYY-MM-DD")
CURRENCY = _fn("convert_currency", "Convert an amount between currencies", amount="the amount",
               source="currency code to convert from", target="currency code to convert to")
ORDER = _fn("get_order_status", "Look up the status of a customer order", order_id="the order number")
CALENDAR = _fn("create_event", "Put an event in the user's calendar", title="what the event is",
               date="the date", time="the time")
WIKI = _fn("search_docs", "Search the company's internal documentation", query="what to look for")


def _user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


def _after(question: str, name: str, args: str, result: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": question},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": name, "arguments": args}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": result}]


# (messages, tools, expected: a function name, or None for a text answer)
CASES: list[tuple[list[dict[str, Any]], list[dict[str, Any]], str | None]] = [
    (_user("What's the weather like in Paris right now?"), [WEATHER, STOCK], "get_weather"),
    (_user("Is it raining in Tokyo?"), [WEATHER, CALENDAR], "get_weather"),
    (_user("How much is one share of Microsoft (MSFT) trading at?"), [WEATHER, STOCK], "get_stock_price"),
    (_user("Send an email to bob@example.com saying the meeting moved to 3pm."), [EMAIL, CALENDAR], "send_email"),
    (_user("Find me flights from Berlin to Rome on 2026-12-03."), [FLIGHTS, WEATHER], "search_flights"),
    (_user("How many euros is 250 US dollars?"), [CURRENCY, STOCK], "convert_currency"),
    (_user("Where is my order 88123?"), [ORDER, EMAIL], "get_order_status"),
    (_user("Add a dentist appointment to my calendar on Friday at 10am."), [CALENDAR, EMAIL], "create_event"),
    (_user("What does our travel policy say about hotel budgets?"), [WIKI, FLIGHTS], "search_docs"),
    (_user("Check the status of order A-551 please"), [ORDER, WIKI], "get_order_status"),
    (_user("weather in Lagos?"), [WEATHER], "get_weather"),
    (_user("Convert 1200 yen to pounds"), [CURRENCY], "convert_currency"),
    (_user("Email alice@corp.com the subject 'Q3 numbers' and tell her the report is ready"), [EMAIL],
     "send_email"),
    (_user("I need a flight from Madrid to Lisbon tomorrow, 2026-11-24"), [FLIGHTS, CURRENCY], "search_flights"),
    (_user("What's TSLA at today?"), [STOCK, WIKI], "get_stock_price"),
    (_user("Look up how to reset a VPN token in our docs"), [WIKI, ORDER], "search_docs"),
    (_user("Schedule 'team lunch' on 2026-12-01 at 12:30"), [CALENDAR], "create_event"),
    (_user("Is it cold in Oslo today? I'm deciding on a coat."), [WEATHER, FLIGHTS], "get_weather"),
    (_user("Tell me a joke about cats."), [WEATHER, STOCK], None),
    (_user("What is the capital of Italy?"), [WEATHER, EMAIL], None),
    (_user("Thanks, that's all I needed!"), [ORDER, EMAIL], None),
    (_user("Write a haiku about autumn."), [CALENDAR, WIKI], None),
    (_user("Hi there! How are you?"), [WEATHER], None),
    (_user("Explain what a mutual fund is in one sentence."), [STOCK, CURRENCY], None),
    (_user("Translate 'good morning' into Spanish."), [EMAIL, WIKI], None),
    (_user("What is 12 times 12?"), [WEATHER, ORDER], None),
    (_user("Summarize: the meeting covered budgets and hiring; both were approved."), [EMAIL, CALENDAR], None),
    (_user("Can you recommend a good book about history?"), [FLIGHTS, STOCK], None),
    (_user("What does HTTP stand for?"), [WIKI, WEATHER], None),
    (_user("Say hello in French."), [CURRENCY], None),
    (_after("What's the weather in Paris?", "get_weather", '{"city": "Paris"}', "18°C, sunny"), [WEATHER], None),
    (_after("Where is order 88123?", "get_order_status", '{"order_id": "88123"}', "shipped, arriving Monday"),
     [ORDER, EMAIL], None),
    (_after("How many euros is 100 dollars?", "convert_currency",
            '{"amount": "100", "source": "USD", "target": "EUR"}', "92.10 EUR"), [CURRENCY], None),
    (_after("What's AAPL at?", "get_stock_price", '{"ticker": "AAPL"}', "231.40 USD"), [STOCK, WEATHER], None),
    (_after("Find flights Berlin to Rome on 2026-12-03", "search_flights",
            '{"origin": "Berlin", "destination": "Rome", "date": "2026-12-03"}',
            "LH 232 at 07:10, 129 EUR; AZ 431 at 13:45, 98 EUR"), [FLIGHTS], None),
    (_after("Email bob@example.com that I'm late", "send_email",
            '{"to": "bob@example.com", "subject": "Running late", "body": "I am late"}', "sent"), [EMAIL], None),
]


# A second set with other tools and phrasings, written before any change was measured on it:
# decision rules are chosen on CASES and reported on both.
TABLE = _fn("book_table", "Reserve a table at a restaurant", restaurant="the restaurant", time="when",
            people="how many guests")
TRAINS = _fn("get_train_times", "Departure times of trains between two stations", origin="from station",
             destination="to station")
TIMER = _fn("set_timer", "Start a countdown timer", minutes="how many minutes")
STAFF = _fn("lookup_employee", "Find a colleague's contact details in the staff directory",
            full_name="their name")
TICKET = _fn("create_ticket", "Open a support ticket for an IT problem", summary="what is wrong")
PACKAGE = _fn("track_package", "Track a parcel by its tracking number", tracking_number="the tracking number")
NEWS = _fn("get_news", "Latest news headlines on a topic", topic="the topic")
TRANSLATE_DOC = _fn("translate_file", "Translate an uploaded file into another language", file_id="the file",
                    language="target language")

HELDOUT_CASES: list[tuple[list[dict[str, Any]], list[dict[str, Any]], str | None]] = [
    (_user("Book a table for four at Luigi's tonight at 8."), [TABLE, TIMER], "book_table"),
    (_user("When is the next train from Leeds to York?"), [TRAINS, TABLE], "get_train_times"),
    (_user("Set a timer for 12 minutes"), [TIMER, NEWS], "set_timer"),
    (_user("What's Priya Natarajan's phone number?"), [STAFF, TICKET], "lookup_employee"),
    (_user("My laptop won't connect to the office wifi, please open a ticket"), [TICKET, STAFF], "create_ticket"),
    (_user("Where is parcel 1Z999AA10123456784?"), [PACKAGE, TRAINS], "track_package"),
    (_user("Any news about the elections today?"), [NEWS, TIMER], "get_news"),
    (_user("Please translate file f_123 into German"), [TRANSLATE_DOC, NEWS], "translate_file"),
    (_user("Can you reserve us a spot at Sakura for 7pm, two people?"), [TABLE], "book_table"),
    (_user("trains Glasgow to Edinburgh"), [TRAINS], "get_train_times"),
    (_user("remind me in 5 minutes to check the oven"), [TIMER], "set_timer"),
    (_user("Who is the contact for payroll, Tom Becker? I need his email."), [STAFF], "lookup_employee"),
    (_user("The printer on floor 3 is jammed again."), [TICKET, PACKAGE], "create_ticket"),
    (_user("Has my package with tracking number 9400111899223 shipped yet?"), [PACKAGE], "track_package"),
    (_user("What are today's top headlines in technology?"), [NEWS, TRAINS], "get_news"),
    (_user("What is a good tip at a restaurant in the US?"), [TABLE], None),
    (_user("How fast do high-speed trains go?"), [TRAINS, NEWS], None),
    (_user("How long should I boil an egg?"), [TIMER], None),
    (_user("What makes a good employee?"), [STAFF, TICKET], None),
    (_user("Write a short poem about the sea."), [TICKET, PACKAGE], None),
    (_user("What is the square root of 144?"), [NEWS, TIMER], None),
    (_user("Translate 'thank you' into Japanese."), [TRANSLATE_DOC], None),
    (_user("Who wrote Pride and Prejudice?"), [NEWS, STAFF], None),
    (_user("Give me three tips for a job interview."), [STAFF, TABLE], None),
    (_user("Good night!"), [TIMER, NEWS], None),
    (_user("Explain the difference between a virus and a bacterium."), [TICKET], None),
    (_after("Book a table for two at Nopa at 7", "book_table",
            '{"restaurant": "Nopa", "time": "19:00", "people": "2"}', "confirmed, ref 8812"), [TABLE], None),
    (_after("Next train Leeds to York?", "get_train_times", '{"origin": "Leeds", "destination": "York"}',
            "14:05, 14:35, 15:05"), [TRAINS], None),
    (_after("Track 1Z999", "track_package", '{"tracking_number": "1Z999"}', "out for delivery"), [PACKAGE],
     None),
    (_after("Open a ticket: VPN down", "create_ticket", '{"summary": "VPN down"}', "ticket IT-4411 opened"),
     [TICKET, STAFF], None),
]


# A third set, written before the argument-grounding check was measured on anything: other
# tools again, and more requests that are on a tool's topic but ask for no action or lookup.
HOTEL = _fn("search_hotels", "Find hotel rooms in a city for given dates", city="the city", check_in="arrival date",
            nights="number of nights")
INVOICE = _fn("get_invoice", "Fetch a customer's invoice by its number", invoice_number="the invoice number")
REFUND = _fn("issue_refund", "Refund a customer's payment", order_id="the order", amount="amount to refund")
RECIPE = _fn("find_recipe", "Search the recipe database by dish or ingredient", query="dish or ingredient")
LIGHTS = _fn("set_lights", "Turn the smart lights in a room on or off", room="which room", state="on or off")
MEETING = _fn("schedule_meeting", "Book a meeting room and invite people", attendees="who to invite",
              start="start date and time")
ROUTE = _fn("get_directions", "Driving directions between two places", start="starting point",
            destination="where to go")
DEFINE = _fn("lookup_definition", "Look up a term in the legal glossary", term="the term")

HELDOUT2_CASES: list[tuple[list[dict[str, Any]], list[dict[str, Any]], str | None]] = [
    (_user("Find me a hotel in Vienna from March 3 for two nights"), [HOTEL, ROUTE], "search_hotels"),
    (_user("Pull up invoice INV-2291 for me"), [INVOICE, REFUND], "get_invoice"),
    (_user("Refund 40 dollars on order 55102, the item arrived broken"), [REFUND, INVOICE], "issue_refund"),
    (_user("Do we have a recipe for mushroom risotto?"), [RECIPE, LIGHTS], "find_recipe"),
    (_user("Turn off the kitchen lights"), [LIGHTS, RECIPE], "set_lights"),
    (_user("Set up a meeting with Dana and Luis next Tuesday at 10"), [MEETING, HOTEL], "schedule_meeting"),
    (_user("How do I drive from Lyon to Geneva?"), [ROUTE, HOTEL], "get_directions"),
    (_user("What does 'force majeure' mean in our glossary?"), [DEFINE, INVOICE], "lookup_definition"),
    (_user("any rooms in Porto this weekend?"), [HOTEL], "search_hotels"),
    (_user("lights on in the living room please"), [LIGHTS], "set_lights"),
    (_user("I was double charged on order 7781, please give back the 19.99"), [REFUND], "issue_refund"),
    (_user("Directions to the airport from Central Station"), [ROUTE, MEETING], "get_directions"),
    (_user("Something with chickpeas for dinner? Check our recipes."), [RECIPE], "find_recipe"),
    (_user("Can you get me invoice number 00418?"), [INVOICE], "get_invoice"),
    (_user("Look up 'indemnification' in the legal glossary"), [DEFINE], "lookup_definition"),
    (_user("What should I pack for a week in a hotel?"), [HOTEL], None),
    (_user("Why do invoices have due dates?"), [INVOICE, REFUND], None),
    (_user("Is it rude to ask for a refund at a restaurant?"), [REFUND], None),
    (_user("What is the origin of the word recipe?"), [RECIPE, DEFINE], None),
    (_user("How much energy does an LED bulb save?"), [LIGHTS], None),
    (_user("Tips for running a shorter meeting?"), [MEETING, ROUTE], None),
    (_user("Why do GPS directions sometimes take weird routes?"), [ROUTE], None),
    (_user("Write a limerick about a lawyer."), [DEFINE, INVOICE], None),
    (_user("What is 15% of 80?"), [REFUND, INVOICE], None),
    (_user("Thank you so much, you've been very helpful."), [HOTEL, MEETING], None),
    (_user("Name three famous French dishes."), [RECIPE], None),
    (_after("Refund order 55102", "issue_refund", '{"order_id": "55102", "amount": "40"}', "refunded 40.00 USD"),
     [REFUND, INVOICE], None),
    (_after("Hotel in Vienna for 2 nights from 2027-03-03", "search_hotels",
            '{"city": "Vienna", "check_in": "2027-03-03", "nights": "2"}', "Hotel Sacher 310 EUR; Motel One 89 EUR"),
     [HOTEL], None),
    (_after("Turn off the kitchen lights", "set_lights", '{"room": "kitchen", "state": "off"}', "ok"), [LIGHTS],
     None),
    (_after("Define estoppel", "lookup_definition", '{"term": "estoppel"}',
            "A rule that stops a party from going back on an earlier statement"), [DEFINE], None),
]
