"""Claim extraction: each attribution pattern, quantity form, verification class and filter, on
sentences written for these tests (not the evaluation gold)."""

from __future__ import annotations

import re

import pytest

from extractors.claims import ClaimExtractor
from extractors.claims.extractor import batches_by_size, claims_from_doc, paragraph_pieces, segments
from extractors.claims.genders import Genders, name_parts
from extractors.claims.mentions import mention_kind
from extractors.claims.nlp import entities_in, load_nlp
from storage.seed import SEED_DIR
from tests.fixtures.cli import cli_json_lines


@pytest.fixture(scope="module")
def extractor():
    return ClaimExtractor()


def one(extractor, text: str, index: int = 0):
    claims = extractor.extract(text)
    assert claims, f"no claim from {text!r}"
    for claim in claims:
        assert text[claim.start : claim.end] == claim.text
    return claims[index]


@pytest.mark.parametrize(
    ("text", "claimant", "cue"),
    [
        ("Maria Ivanova said that the recruitment office had closed for the week.", "Maria Ivanova", "said"),
        ("The recruitment office had closed for the week, Maria Ivanova said.", "Maria Ivanova", "said"),
        (
            "The recruitment office had closed for the week, said Oleg Petrov, the district mayor.",
            "Oleg Petrov",
            "said",
        ),
        (
            "The recruitment office had closed for the week, according to the regional governor's office.",
            "regional governor's office",
            "according to",
        ),
        ("Oleg Petrov told Reuters that the recruitment office had closed for the week.", "Oleg Petrov", "told"),
        (
            "According to the independent outlet Mediazona, at least 120,000 Russian soldiers have been killed.",
            "Mediazona",
            "according to",
        ),
        (
            "Anton Sokolov, head of the regional draft board, said that quotas were not being met.",
            "Anton Sokolov",
            "said",
        ),
        (
            "Anton Sokolov, head of the regional draft board, in a written statement said quotas were missed.",
            "Anton Sokolov",
            "said",
        ),
        ("The ministry denied that any conscripts had been sent to the front.", "ministry", "denied"),
        ("“We were never told where we were going,” wrote a soldier named Pavel.", "a soldier named Pavel", "wrote"),
        # The parser hangs the quote on the wrong word; the quotation before the cue says who speaks.
        ("“Oh my,” Lucas responded with a sigh.", "Lucas", "responded"),
        (
            "“The mission I flew accomplished the whole thing with one launch,” Stafford, a member of the "
            "Apollo 10 crew, responded.",
            "Stafford",
            "responded",
        ),
        ("Both men claimed at the time that they were being treated well.", "Both men", "claimed"),
        ("Noem later tweeted that the state's meth epidemic needs to be discussed.", "Noem", "tweeted"),
        ("He added: “The refugees must not be forced to decide under threat of starvation.”", "He", "added"),
        (
            "The video prompted some veterans' groups to argue that the draft notices were unlawful.",
            "some veterans' groups",
            "argue",
        ),
        (
            "President Barack Obama responded to a Gold Star mother by saying his refusal to use the words "
            "was a manufactured issue.",
            "President Barack Obama",
            "saying",
        ),
        # A participle after 'as' names its source in the aside, never the clause's subject.
        (
            "As reported by The Moscow Times, the ministry has raised the signing bonus to 1.5 million rubles.",
            "Moscow Times",
            "reported",
        ),
        (
            "As stated in the ministry's annual report, the number of volunteers fell by half in March.",
            "ministry's annual report",
            "stated",
        ),
        ("It is not clear whether the recruits were armed, as police have said.", "police", "said"),
        (
            "It was confirmed by the Defence Ministry that the brigade had been withdrawn.",
            "Defence Ministry",
            "confirmed",
        ),
        # A person named in apposition speaks, not the post or whose it is.
        (
            "The governor of Belgorod, Vyacheslav Gladkov, said two civilians had been wounded.",
            "Vyacheslav Gladkov",
            "said",
        ),
        (
            "Petrov's lawyer, Anna Orlova, said in an email that her client had never been served a draft notice.",
            "Anna Orlova",
            "said",
        ),
        # Who is quoted or shown speaks, not who quotes or shows them.
        (
            "Interfax quoted Dmitry Peskov as saying that the Kremlin had no plans for a second wave.",
            "Dmitry Peskov",
            "saying",
        ),
        (
            "Peskov was quoted by Interfax as saying that the Kremlin had no plans for a second wave.",
            "Peskov",
            "saying",
        ),
        ("The agency cited a source in the ministry as saying that the decree was ready.", "a source", "saying"),
        ("The ministry released a video of Shoigu saying that the mobilisation was complete.", "Shoigu", "saying"),
        # The parser leaves the speaker out of the clause: hung on the phrase before it, or after an aside.
        (
            "In a video posted on Telegram, a man identifying himself as a commander of the unit said his men had "
            "not been paid.",
            "a man identifying himself as a commander of the unit",
            "said",
        ),
        ("Peskov, asked about the report, said it was untrue.", "Peskov", "said"),
        # Rejecting what was said is a denial by whoever rejects it; rejecting a proposal is not.
        ("The Kremlin has dismissed the allegations as baseless.", "Kremlin", "dismissed"),
        ("Peskov refuted the report on Monday.", "Peskov", "refuted"),
        # The tagger reads 'ministry show' as one noun.
        (
            "Figures from the ministry show that recruitment fell by a third in the spring.",
            "Figures from the ministry",
            "show",
        ),
        # A participle reports for the subject of the clause it hangs on.
        (
            "The ministry published the figures on Monday, noting that recruitment had doubled since March.",
            "ministry",
            "noting",
        ),
        (
            "Rights groups criticised the decree, warning that it would send untrained men to the front.",
            "Rights groups",
            "warning",
        ),
        ("Kofman spent ten minutes explaining that the army could not replace its losses.", "Kofman", "explaining"),
        (
            "The region missed its quota again, with the draft office admitting that only a third of the places "
            "were filled.",
            "draft office",
            "admitting",
        ),
        # The parser gives the cue a second subject inside the quotation ('it will at some point').
        (
            '"If the army does not have enough men yet, it will at some point, probably sooner rather than later," '
            "said Dmitry Kuznetsov, a sociologist who studies the army.",
            "Dmitry Kuznetsov",
            "said",
        ),
        # Judging what was said reports the judge's view ('called the reports "absolutely untrue"').
        ('Peskov called the reports "absolutely untrue".', "Peskov", "called"),
        ("The governor called the report a milestone for the region.", "governor", "called"),
        ("Per the Defence Ministry, 1,000 recruits arrived at the base last week.", "Defence Ministry", "per"),
        ("The analyst Pavel Luzin pointed out that recruitment had slowed in the autumn.", "Pavel Luzin", "pointed"),
        # verbs that report only with a clause
        ("A district court in Moscow ruled that the conscription order was unlawful.", "district court", "ruled"),
        ("Putin vowed that Russia would achieve all the goals of the operation.", "Putin", "vowed"),
        ("Officials in Kyiv fear that Russia will call up another 300,000 men.", "Officials in Kyiv", "fear"),
        ("The central bank projects that military spending will rise by a third.", "central bank", "projects"),
        ("Gladkov cautioned that the shelling of Belgorod could intensify.", "Gladkov", "cautioned"),
        # whoever tells of a belief is its source
        (
            "Kremlin officials fear that a new call-up would spark protests, according to people familiar with "
            "their thinking.",
            "people familiar with their thinking",
            "according to",
        ),
        (
            'Olga Ivanova, a sociologist at the Levada Center, commented: "The war has become routine for most."',
            "Olga Ivanova",
            "commented",
        ),
        # A name in the phrase before the subject is whom they spoke to, not who speaks.
        ("In an interview with the BBC, the governor said recruitment had slowed.", "governor", "said"),
        # The parser makes the speaker an apposition of the name before the comma.
        (
            "To understand the real Ivan Susanin, Chief Justice Roberts said, one should visit the museum.",
            "Chief Justice Roberts",
            "said",
        ),
    ],
)
def test_attribution_patterns(extractor, text, claimant, cue):
    claim = one(extractor, text)
    assert claim.claimant is not None and claimant.lower() in claim.claimant.lower()
    assert claim.cue == cue


@pytest.mark.parametrize(
    "text",
    [
        "Danilo Gallinari added 25 points in his former home arena.",
        "Spot gold added 0.1% to $1,472.19 an ounce.",
        "It is a state where Joe Biden has maintained a significant polling lead for months.",
        "The family claimed his body and left town shortly after.",
        "Garrett responded by hitting Rudolph in the head with his own helmet.",
        "The senator asked for compassion during the sentencing hearing.",
        "Although he had written a will, it was never witnessed.",
        "The committee concluded its third public hearing on Tuesday.",
        "The president tweeted a photo of the rally on Monday night.",
        "You can't even tell that the new monitor is larger than the old one.",
        "It is a ministry that lies as easily as it tells the truth.",
        # a passive cue names no source, also through a conjunct
        "The trip was unscheduled and was not announced to reporters.",
        "The population of the camp has fluctuated and currently is estimated at around 40,000.",
        # 'as' with a participle and no source: the outlet's aside, not the clause's subject speaking
        "As previously reported, the ministry has raised the signing bonus again.",
        "The offensive stalled in the spring, as predicted.",
        "As shown in the case of the Wagner recruits, the pardons were granted in secret.",
        # pointing at a thing, commenting on one: nothing reported
        "She pointed out the window at the recruitment office.",
        "The governor commented on the report at length.",
        # ruling, vowing, expecting, promising without a clause: a verdict, a plan, a likelihood
        "The court ruled the case inadmissible on Tuesday.",
        "The commander vowed revenge for the attack on the convoy.",
        "Bridenstine expects to produce three rockets through 2024.",
        "The Black Friday deals promise to be even better this year.",
        # a question, not a finding
        "We decided to put ourselves out there, not knowing what we would find.",
        # 'per' as a rate, not a source
        "Per day, about 300 men signed contracts in the region.",
        # calling someone or something that was not said is no report
        "The governor called the reservists a credit to the region.",
        "The ministry called up 300,000 reservists in September.",
        # a cue withheld reports nothing
        "The Kremlin has refused to announce a full mobilisation, which would be unpopular.",
        "The recruiter declined to say how many inmates had signed contracts.",
        "Reporters asked the governor about the quota, but he would not say.",
        # a participle that is someone else's act, or a noun, or 'deny' as 'withhold'
        "The chairman called on Medvedev to apologise for suggesting that the recruits were criminals.",
        "Western officials pressed Kyiv into announcing a new draft law.",
        "Anna Petrova and Oleg Sokolov contributed reporting.",
        "The ministry is denying bonuses to soldiers who were wounded.",
        "The Duma rejected the proposal to raise the draft age.",
    ],
)
def test_verbs_that_only_sometimes_report_need_something_reported(extractor, text):
    assert one(extractor, text).claimant is None


def test_a_quote_cut_off_by_the_sentence_splitter_keeps_the_speaker_after_it(extractor):
    claims = extractor.extract("“We must teach the defendant love,” she wrote in her letter.\n")
    assert claims
    assert {c.cue for c in claims} == {"wrote"}


def test_a_description_resolved_again_and_again_names_its_role_once(extractor):
    text = (
        "SoftBank said it would cut 1,000 jobs at WeWork.\n"
        "The group said the cuts would be finished by March.\n"
        "The group added that employees had been told to sign new contracts.\n"
        "The group said on Twitter that the contracts had confused employees."
    )
    claimants = [c.claimant for c in extractor.extract(text)]
    assert claimants == ["SoftBank", "SoftBank (group)", "SoftBank (group)", "SoftBank (group)"]


def test_pronoun_and_description_resolve_to_the_named_source(extractor):
    text = (
        "The Institute for the Study of War said that Russia was recruiting prisoners.\n"
        "The think tank added that the recruits received two weeks of training.\n"
        "Dmitry Orlov, a lawyer who represents several families, said the men had signed contracts under pressure.\n"
        "He added that none of them had been paid.\n"
        "The lawyer said the families had written to the prosecutor."
    )
    claims = extractor.extract(text)
    by_start = {c.text.split()[1]: c.claimant for c in claims}
    assert "Institute for the Study of War" in by_start["think"]
    assert by_start["added"] == "Dmitry Orlov"
    assert "Dmitry Orlov" in (claims[-1].claimant or "") or "lawyer" in (claims[-1].claimant or "")


@pytest.mark.parametrize(
    ("text", "speaker"),
    [
        # The subject of the last sentence, not the last name in it.
        (
            "The talent manager Dmitry Orlov has worked with Kanye West and Kim Kardashian, both of whom "
            "Taylor Swift has feuded with.\nHe has consistently said that he was never unfair to her.",
            "Dmitry Orlov",
        ),
        (  # the tagger calls this one an organisation; its apposition says otherwise
            "Dmitry Orlov, a talent manager, has worked with Kanye West and Kim Kardashian, both of whom "
            "Taylor Swift has feuded with.\nHe has consistently said that he was never unfair to her.",
            "Dmitry Orlov",
        ),
        (
            "Taylor Swift's first six albums were released through a label bought by the manager Scooter "
            "Braun.\nShe said the sale was the worst case scenario for her.",
            "Taylor Swift",
        ),
        # A subordinate clause's subject before the pronoun, in the same sentence.
        (
            "The recruiters came to the village in March.\nWhen Anton Sokolov was approached by officers, he "
            "told them that he had never signed a contract.",
            "Anton Sokolov",
        ),
        # A surname the tagger does not know alone, after the full name.
        (
            "Kurt Volker and Tim Morrison testified on Tuesday.\nVolker disputed the notion that he had run an "
            "irregular channel.\nHe told lawmakers that his role had been official.",
            "Volker",
        ),
        # A resolved 'he said' goes on speaking; a name inside his quotation is not him.
        (
            "Montell Figgins, who represents Thomas, said his client would not accept a plea agreement.\n"
            "“We hoped the Bureau of Prisons and Michael Thomas would be heard,” he said.\n"
            "Sometimes employees do not follow the rules, he said.",
            "Montell Figgins",
        ),
        # A person noun heads it, whatever name modifies it: "a Kremlin spokesman" is no organisation.
        (
            "A Kremlin spokesman said the talks had stalled.\nHe added that no date had been set for the next round.",
            "A Kremlin spokesman",
        ),
        # A cue between commas governs the sentence; a participle whose subject stands far before it doesn't.
        (
            "Vladimir Osechkin said the recruiters had visited the colony in July.\nNow, he added, many of those "
            "volunteers — or their families — are contacting him and seeking to get out of their commitments, "
            "telling him: “I really don’t want to go.”",
            "Vladimir Osechkin",
        ),
        # A first name the tagger doesn't know, described as someone of an age or who did something.
        (
            '"People are going for the money," said Alexei, a 41-year-old driver from Samara.\n'
            '"Nobody tells you that when you sign," he said.',
            "Alexei",
        ),
        (
            '"People are going for the money," said Alexei, a driver who signed a contract in October.\n'
            '"Nobody tells you that when you sign," he said.',
            "Alexei",
        ),
    ],
)
def test_pronouns_resolve_to_the_most_salient_person(extractor, text, speaker):
    claims = extractor.extract(text)
    assert claims[-1].claimant == speaker


@pytest.mark.parametrize(
    ("text", "claimants"),
    [
        # "son" makes Berg a man: "he" is him, "she" is not.
        (
            "Maria Gonzalez had heart surgery in 2012.\nHer son, the filmmaker Oskar Berg, remembers it as a hard "
            "time. “She was not herself for months,” he said.\nThe actress kept working through it. “I could not "
            "have learned any lines,” she said.",
            [None, None, "Oskar Berg", None, "Maria Gonzalez"],
        ),
        # A title says it, also of the full name that comes later.
        (
            "Ms. Ivanova, a lawyer, met Mr. Orlov in Moscow on Monday.\nMr. Orlov said the deal was finished.\n"
            "“We signed everything we came to sign,” she said.",
            [None, "Mr. Orlov", "Ivanova"],
        ),
        (
            "Anna Ivanova met the trade minister in Moscow on Monday.\nMr. Orlov said the deal was finished.\n"
            "“We signed everything we came to sign,” she said.",
            [None, "Mr. Orlov", "Anna Ivanova"],
        ),
        # "Jr." is no surname: Sechin is a man named before, and a different one from Kennedy.
        (
            "Anna Petrova, the lawyer of Igor Sechin Jr., said the case was closed.\nU.S. Attorney James Kennedy "
            "Jr. said the case would go on.\nSechin was arrested in April for a call in which he said he would "
            "burn the office down.",
            ["Anna Petrova", "U.S. Attorney James Kennedy Jr.", "Sechin"],
        ),
        # A wife with the same surname does not make "Clinton" a woman.
        (
            "Former President Bill Clinton spoke in Flint for his wife Hillary Clinton.\n“It doesn’t make any "
            "sense,” Clinton said.\n“It’s the craziest thing in the world,” he said.",
            [None, "Clinton", "Clinton"],
        ),
        # A speaker the text names only as "a woman" is who "she" is, not the man named before her.
        (
            "Vladimir Osechkin said that the recruitment of inmates had spread to seven regions.\nAccording to a "
            "woman whose son was recruited in prison, the recruiters promised pardons.\nShe said that her son had "
            "been sent to the front within two weeks.",
            ["Vladimir Osechkin", "a woman", "a woman"],
        ),
        # One the text names only by a gendered noun is "she" when no named person can be, and only when she
        # is the only such woman.
        (
            "The BBC spoke to a woman whose son was conscripted in March.\n“They took him from his bed at night,” "
            "she said.",
            [None, "a woman"],
        ),
        (
            "A mother in Buryatia and her daughter waited outside the recruitment office.\n“Nobody tells us "
            "anything,” she said.",
            [None, "she"],
        ),
    ],
)
def test_a_pronoun_skips_a_person_the_text_gives_the_other_gender(extractor, text, claimants):
    assert [c.claimant for c in extractor.extract(text)] == claimants


def test_people_are_told_apart_by_full_name_and_a_shared_surname_is_nobody_in_particular():
    assert name_parts("U.S. Attorney James Kennedy Jr.") == ("james", "kennedy")
    assert name_parts("Sonya A. Zoghlin") == ("sonya", "zoghlin")
    assert name_parts("Prince Andrew") == (None, "andrew")
    assert name_parts("Steenburgen’s") == (None, "steenburgen")
    genders = Genders()
    genders.see("Ms. Ivanova", "F")
    genders.see("Anna Ivanova")
    assert genders.of("Anna Ivanova") == genders.of("Ivanova") == "F"
    genders.see("Bill Clinton")
    genders.see("Hillary Clinton", "F")
    assert genders.of("Hillary Clinton") == "F"
    assert genders.of("Bill Clinton") is None and genders.of("Clinton") is None
    genders.learn("Bill Clinton", "M")
    genders.learn("Bill Clinton", "F")  # the first statement stands
    assert genders.of("Bill Clinton") == "M"


@pytest.mark.parametrize(
    ("text", "claimants"),
    [
        # A definite plural description finds its source ("sources" was cut to "source" before).
        (
            "Military sources in Kyiv said the brigade had withdrawn from the town.\nThe sources added that the "
            "road was under fire.",
            ["Military sources in Kyiv", "Military sources in Kyiv"],
        ),
        # An indefinite one is someone new, not the last organisation.
        (
            "SoftBank said on Monday that WeWork would cut 2,400 jobs.\nThose include 1,000 cleaners who will be "
            "let go in December, according to a group of employees.",
            ["SoftBank", "a group of employees"],
        ),
        (
            "A study by researchers at Oxford University found that sleep improves memory.\nAnother study in 38 "
            "adults found that naps did not help.",
            ["A study by researchers at Oxford University", "Another study in 38 adults"],
        ),
        # A bare plural is anyone's.
        (
            "NASA scientists said the ice shell was miles thick.\nScientists believe there is an ocean beneath it.",
            ["NASA scientists", "Scientists"],
        ),
        # A body of another kind is not what the description names ('News Agency' for 'the commission'), and
        # 'his office' is some person's, not the last organisation's.
        (
            "The state-run Xinhua News Agency reported two new cases on Tuesday.\nNo one else has shown symptoms, "
            "the commission said.",
            ["state-run Xinhua News Agency", "commission"],
        ),
        (
            "Scientists at NASA's Goddard Space Flight Center found water vapour above Europa.\nThe moon is a "
            "priority target, according to the agency.",
            [None, "NASA (agency)"],
        ),
        (
            "Teachers did not see Governor Holcomb at the Statehouse on Tuesday.\nHis office said he was "
            "travelling to Florida.",
            [None, "His office"],
        ),
        # A body's own report is not an earlier report by someone else.
        (
            "According to a report by Human Rights Watch, the recruits were sent to the front untrained.\nAs "
            "stated in the ministry's annual report, the number of volunteers fell by half in March.",
            ["a report by Human Rights Watch", "ministry's annual report"],
        ),
        # A body named by the description's head word, or the subject of its own sentence, outranks a more
        # salient speaker just before.
        (
            "Amnesty International said the recruits were untrained.\nThe Defence Ministry has signed 100,000 new "
            "contracts since January, the ministry said on Tuesday.",
            ["Amnesty International", "Defence Ministry"],
        ),
        (
            "Amnesty International said the recruits were untrained.\nWagner has recruited thousands of "
            "prisoners, the company said.",
            ["Amnesty International", "Wagner (company)"],
        ),
        (
            "The Kremlin has dismissed reports of a new mobilisation.\nThe ministry rejected the allegations as "
            "baseless.",
            ["Kremlin", "ministry"],
        ),
        # A person's role, given once, names them while they are still being heard from; not a role of some
        # body ('the president of the Farm Bureau' is not 'the president').
        (
            '"We are seeing a huge outflow," said Alexei Tabalov, a lawyer who runs a legal aid group.\n'
            "Tabalov said some soldiers complain that they were deceived.\nThe lawyer stated that few of them "
            "opposed the war.",
            ["Alexei Tabalov", "Tabalov", "Alexei Tabalov"],
        ),
        (
            "Zippy Duvall, the president of the American Farm Bureau, said farmers faced hardship.\nThe president "
            "announced the trade deal on Friday.",
            ["Zippy Duvall", "president"],
        ),
        # One that says whose it is names a body of its own, not the last organisation named.
        (
            "The AP saw job openings for military specialists on several sites.\nThe British military said this "
            "week that Russia had formed a new corps.",
            [None, "British military"],
        ),
    ],
)
def test_a_description_names_an_earlier_source_only_when_definite(extractor, text, claimants):
    assert [c.claimant for c in extractor.extract(text)] == claimants


def test_a_name_in_apposition_to_a_person_noun_is_a_person():
    # The small model calls this name an organisation; the title it stands beside says otherwise.
    doc = load_nlp()(
        "Sweden’s deputy director of public prosecutions, Eva-Marie Persson, said the evidence was not strong enough."
    )
    name = next(ent for ent in doc.ents if "Persson" in ent.text)
    assert mention_kind(name) == "PERSON"


def test_quote_across_sentences_and_paragraphs_takes_the_speaker_named_once(extractor):
    text = (
        "“We were sent forward without maps. Half of the unit never came back.\n"
        "“Nobody answers our letters,” said Igor Belov, a former reservist.\n"
        "The ministry did not respond to a request for comment."
    )
    claims = extractor.extract(text)
    assert [c.claimant for c in claims[:3]] == ["Igor Belov"] * 3
    assert all("for comment" not in c.text for c in claims)


def test_a_quote_written_with_two_apostrophes_carries_its_speaker_too(extractor):
    # Archive and wire copy writes ''…'' for "…".
    text = (
        "''We were sent forward without maps. Half of the unit never came back,'' said Igor Belov, a former "
        "reservist.\nThe ministry said the unit had been resupplied."
    )
    claims = extractor.extract(text)
    assert [c.claimant for c in claims] == ["Igor Belov", "Igor Belov", "ministry"]


def test_a_quote_after_its_attributed_quote_in_the_same_paragraph_keeps_the_speaker(extractor):
    text = (
        "“We were sent forward without maps,” Igor Belov said on Tuesday. “Nobody answers our letters. "
        "Half of the unit never came back.”\n"
        "The recruitment office in Perm closed last week. “It is a disgrace.”"
    )
    claims = extractor.extract(text)
    assert [c.claimant for c in claims[:3]] == ["Igor Belov"] * 3
    assert claims[-1].text == "“It is a disgrace.”" and claims[-1].claimant is None


def test_it_is_not_an_organisation_that_only_named_a_thing(extractor):
    claims = extractor.extract(
        "The airline signed a deal for 30 Boeing jets on Wednesday.\nIt announced that the first jets would "
        "arrive in 2025."
    )
    assert [c.claimant for c in claims] == [None, "It"]


def test_a_claim_keeps_the_closing_quote_the_sentence_splitter_left_behind(extractor):
    text = 'Peskov, asked about the report, said it was "absolutely untrue."\nThe ministry did not comment.'
    claims = extractor.extract(text)
    assert [c.text for c in claims] == [
        'Peskov, asked about the report, said it was "absolutely untrue."',
        "The ministry did not comment.",
    ]


def test_outlet_voice_has_no_claimant_and_clause_split(extractor):
    claims = extractor.extract(
        "Training courses have been shortened to two weeks, while the General Staff "
        "of Ukraine said Russia had begun recruiting in prisons."
    )
    assert len(claims) == 2
    assert claims[0].claimant is None
    assert "General Staff" in claims[1].claimant


@pytest.mark.parametrize(
    ("text", "first", "second"),
    [
        (
            "The ministry said recruitment rose in March, but independent researchers argued that the figures "
            "were inflated.",
            ("The ministry said recruitment rose in March", "ministry"),
            ("independent researchers argued that the figures were inflated.", "independent researchers"),
        ),
        # The parser joins the second report to the last verb of the first one's content.
        (
            "The regional governor emphasized that the recruitment drive was on schedule, and human rights "
            "groups warned that conscripts were being sent to the front.",
            ("The regional governor emphasized that the recruitment drive was on schedule", "regional governor"),
            ("human rights groups warned that conscripts were being sent to the front.", "human rights groups"),
        ),
        # The parser makes the first report the content of the second.
        (
            "Moscow says it is fighting Western aggression; Kyiv says it is defending its land.",
            ("Moscow says it is fighting Western aggression", "Moscow"),
            ("Kyiv says it is defending its land.", "Kyiv"),
        ),
    ],
)
def test_two_reports_joined_by_a_conjunction_are_two_claims(extractor, text, first, second):
    claims = extractor.extract(text)
    assert [(c.text, c.claimant) for c in claims] == [first, second]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Officials said 120,000 Russian soldiers had been killed.", [(120000, None, "soldiers")]),
        ("The bonus was raised to $2,150 a month, the governor said.", [(2150, "USD", None)]),
        (
            "Between 20 and 40 percent of recruits refused to serve, the report said.",
            [(20, "percent", None), (40, "percent", None)],
        ),
        ("A dozen men left the prison with the recruiters, she said.", [(12, None, "men")]),
        ("Nearly three dozen recruits deserted last week.", [(36, None, "recruits")]),
        ("Dozens of recruits and several dozen officers deserted last week.", []),
        ("Only one-third of the quota has been filled, Avdonin said.", [(0.3333, "fraction", None)]),
        (
            "Eight of the 11 volunteers deserted within a month, the commander said.",
            [(8, None, None), (11, None, "volunteers")],
        ),
        ("The army recruited 1.5 million men last year, the ministry said.", [(1_500_000, None, "men")]),
        ("Lawmakers raised the draft age to 30 from 27 in 2023.", [(30, None, None), (27, None, None)]),
        ("Deserters face up to 10 years in prison under the law passed on Tuesday.", [(10, "years", None)]),
        ("Nearly half of the recruits had never fired a rifle, the study found.", [(0.5, "fraction", "recruits")]),
        ("Half the men in the unit deserted within a month.", [(0.5, "fraction", "men")]),
        # the scale written onto the number, and a share written as a ratio
        ("The campaign has cost an estimated $1.2bn (£950m) so far.", [(1.2e9, "USD", None), (9.5e8, "GBP", None)]),
        ("About one in five recruits is older than the draft age.", [(0.2, "fraction", "recruits")]),
        ("Officials said 1 in 4 men had left the village.", [(0.25, "fraction", "men")]),
        # the tagger calls ages dates; an age is an amount ('up to age 50', 'aged between 18 and 60', 'is 52')
        (
            "The new corps is seeking men up to age 50 and offers bonuses, the British military said.",
            [(50, None, "age")],
        ),
        ("Volunteers aged between 18 and 60 are accepted, the recruiter said.", [(18, None, None), (60, None, None)]),
        ("The commander, who is 52, said his unit had no reserves.", [(52, None, None)]),
        ("Savings can't be touched until age 59 and a half.", [(59, None, None), (0.5, "fraction", None)]),
        # a part of something, not a share of it
        ("Recruitment fell in the first half of 2024, the ministry said.", []),
        ("A shell destroyed the upper half of the barracks, the governor said.", []),
    ],
)
def test_quantities(extractor, text, expected):
    claim = one(extractor, text)
    got = [(q.value, q.unit) for q in claim.quantities]
    assert len(got) == len(expected), claim.quantities
    for (value, unit), (want_value, want_unit, _want_counted) in zip(got, expected, strict=True):
        assert value == pytest.approx(want_value, rel=1e-3)
        assert unit == want_unit
    counted = [q.counted for q in claim.quantities]
    for got_counted, (_, _, want) in zip(counted, expected, strict=True):
        if want:
            assert got_counted == want


def test_dates_years_times_and_ordinals_are_not_quantities(extractor):
    claim = one(
        extractor,
        "On May 20, 2023, at 10:30, the 4th battalion of the 107th regiment moved to the front "
        "for the second time since 2014.",
    )
    assert claim.quantities == ()


@pytest.mark.parametrize(
    ("text", "status"),
    [
        ("The governor said the quota had been met.", "asserted"),
        ("The governor said the quota had likely been met.", "hedged"),
        ("The unit reportedly lost about 70 men, the official said.", "hedged"),
        ("Around 500 men might have been mobilised in the district, activists said.", "hedged"),
        ("The ministry denied that any conscripts had been sent to the front.", "denied"),
        ("The channel claimed 300 men had deserted, a figure that could not be independently verified.", "unverified"),
        ("The recruits are said to have been promised 300,000 rubles each.", "hedged"),
        ("The ministry did not deny that conscripts had been sent to the border.", "asserted"),
        ("The Kremlin has dismissed the allegations as baseless.", "denied"),
        ('Peskov called the reports "absolutely untrue".', "denied"),
        ("The ministry called the claims a provocation.", "denied"),
    ],
)
def test_verification(extractor, text, status):
    assert one(extractor, text).verification == status


def test_unverified_note_marks_the_claims_before_it(extractor):
    claims = extractor.extract(
        "The center said that residents were fleeing mobilisation. "
        "The Daily Fixture has not been able to verify the claims."
    )
    assert len(claims) == 1 and claims[0].verification == "unverified"


@pytest.mark.parametrize(
    "note",
    [
        "Her account couldn’t be independently verified.",
        "It was not possible to independently verify the group's claim.",
        "Reuters was not able to verify the figures.",
    ],
)
def test_an_unverified_note_opening_a_paragraph_marks_the_paragraph_before(extractor, note):
    claims = extractor.extract(
        "The ministry said 300 men had signed up in March.\n"
        "She said eight of the 11 volunteers had died, and that the rest were still at the front.\n"
        f"{note}\n"
        "The governor said the drive would go on."
    )
    assert [c.verification for c in claims] == ["asserted", "unverified", "asserted"]


@pytest.mark.parametrize(
    "paragraph",
    [
        # What could not be checked is said in the note's own words, or in its own sentence.
        "US pricing has not been confirmed, but the car is expected to go on sale next year.",
        "Complaints are surfacing in the media that some recruits aren’t getting their promised payments, although "
        "those reports can’t be independently verified.",
    ],
)
def test_a_note_on_its_own_paragraph_leaves_the_paragraph_before_alone(extractor, paragraph):
    claims = extractor.extract(f"The ministry said 300 men had signed up in March.\n{paragraph}")
    assert claims[0].verification == "asserted"


def test_boilerplate_headings_and_questions_are_not_claims(extractor):
    text = (
        "Russia Struggles to Fill Its Ranks\n"
        "JOIN US ON TELEGRAM\n"
        "Officials said the draft offices were short of staff.\n"
        "Sign up for our newsletter to get the latest news.\n"
        "Why are so many men refusing to serve?\n"
        "Photo by ALEXANDER NEMENOV//Getty Images\n"
        "Jane Smith is a senior reporter based in London.\n"
        "Related Articles"
    )
    claims = extractor.extract(text)
    assert [c.text for c in claims] == ["Officials said the draft offices were short of staff."]


def test_a_quoted_question_is_no_claim_but_its_speaker_goes_on(extractor):
    claims = extractor.extract(
        "“Are you sure he will come home alive?” asked Elena Petrova, whose husband signed up in May. “He has "
        "never held a rifle.”\n"
        "“The bonus is good money, right?” said Ivan Sidorov."
    )
    assert [(c.text, c.claimant) for c in claims] == [
        ("“He has never held a rifle.”", "Elena Petrova"),
        ("“The bonus is good money, right?” said Ivan Sidorov.", "Ivan Sidorov"),  # a tag question asserts
    ]


def test_entities_listed(extractor):
    claim = one(extractor, "Vladimir Putin announced a partial mobilization in Russia, the Kremlin said.")
    assert {"Vladimir Putin", "Russia", "Kremlin"} <= set(claim.entities)


def test_extract_claims_command_contract(tmp_path):
    a = tmp_path / "a.txt"
    b = tmp_path / "b.txt"
    a.write_text("Officials said 120,000 soldiers had been recruited.\n", encoding="utf-8")
    b.write_text("The governor said the quota had likely been met.\n", encoding="utf-8")
    rows = cli_json_lines("extract-claims", str(a), str(b))
    assert [r["file"] for r in rows] == [str(a), str(b)]
    for row in rows:
        assert set(row) >= {"file", "text", "start", "end", "claimant", "cue", "verification", "quantities", "entities"}
        source = (a if row["file"] == str(a) else b).read_text(encoding="utf-8")
        assert source[row["start"] : row["end"]] == row["text"]
    assert rows[0]["quantities"][0]["value"] == 120000 and rows[0]["quantities"][0]["counted"] == "soldiers"
    assert rows[1]["verification"] == "hedged"


def test_entities_in_reads_what_spacy_reads_off_the_whole_document(extractor):
    text = (SEED_DIR / "000_d8f76010cd23e69f.txt").read_text(encoding="utf-8")
    doc = extractor.nlp(text)
    assert len(doc.ents) > 20
    spans = list(doc.sents) + [doc[i : i + 7] for i in range(0, len(doc) - 7, 5)]  # cutting through entities
    for span in spans:
        assert [(e.start, e.end, e.label_) for e in entities_in(span)] == [
            (e.start, e.end, e.label_) for e in span.ents
        ]


def test_batches_by_size_keeps_order_and_bounds_each_batch():
    texts = ["a" * 5, "b" * 4, "c" * 20, "d" * 3, "e" * 3, "f" * 9]
    groups = list(batches_by_size(texts, 10))
    assert [t for g in groups for t in g] == texts  # every text once, in order
    assert groups == [["a" * 5, "b" * 4], ["c" * 20], ["d" * 3, "e" * 3], ["f" * 9]]
    assert list(batches_by_size([], 10)) == []
    drawn = []
    lazy = (drawn.append(t) or t for t in texts)
    first = next(batches_by_size(lazy, 10))
    assert first == ["a" * 5, "b" * 4] and len(drawn) == 3  # only one item beyond the batch is drawn


def test_parser_batch_size_does_not_change_the_claims(extractor):
    """Batches are bounded in tokens to keep memory flat; which texts share a batch must not matter."""
    texts = [p.read_text(encoding="utf-8") for p in sorted(SEED_DIR.glob("*.txt"))]
    one_by_one = extractor.extract_many(texts, tokens_per_batch=1)
    all_at_once = extractor.extract_many(texts, tokens_per_batch=10**9)
    assert sum(len(c) for c in one_by_one) > 50
    assert one_by_one == all_at_once


def test_segments_cut_long_texts_at_paragraph_breaks_and_keep_offsets():
    paragraphs = [f"Paragraph {i} says the draft office hired {i} clerks. " * 3 for i in range(40)]
    text = "\n".join(paragraphs)
    pieces = segments(text, 1000)
    assert len(pieces) > 1
    assert "".join(part for _, part in pieces) == text
    for offset, part in pieces:
        assert len(part) <= 1000
        assert text[offset : offset + len(part)] == part
        assert offset == 0 or text[offset - 1] == "\n"  # every cut is at a paragraph break
    assert segments("short text", 1000) == [(0, "short text")]
    assert "".join(p for _, p in segments("x" * 2500, 1000)) == "x" * 2500  # no break at all: hard cuts


def test_long_text_is_parsed_in_pieces_with_offsets_into_the_whole(extractor):
    article = sorted(SEED_DIR.glob("*.txt"))[0].read_text(encoding="utf-8").strip()
    single = extractor.extract(article)
    text = "\n".join([article] * 3)
    pieces = extractor.extract_many([text], max_doc_chars=len(article) + 1)[0]
    assert len(pieces) == 3 * len(single)
    for claim in pieces:
        assert text[claim.start : claim.end] == claim.text
    step = len(article) + 1
    shifted = [(c.start + k * step, c.claimant, c.verification) for k in range(3) for c in single]
    assert [(c.start, c.claimant, c.verification) for c in pieces] == shifted


@pytest.mark.parametrize("kind", ["extractor", "worker's locked extractor"])
def test_a_text_that_breaks_the_model_fails_alone_and_the_batch_goes_on(extractor, kind):
    """spaCy refuses a text over its length limit (E088); the other articles of the batch still get claims,
    whether the batch goes through the extractor or the wrapper the ingest workers use."""
    from extractors.claims.extractor import paragraph_parts
    from extractors.pipeline import process_texts
    from extractors.records import Failure, ProcessedArticle
    from flows.stages import claim_extractor
    from storage.seed import load_seed_documents

    claims = extractor if kind == "extractor" else claim_extractor()
    assert extractor.nlp is load_nlp()  # one shared model, so the limit set below binds both

    def longest_paragraph(article) -> int:  # the model is given paragraphs, so the limit binds per paragraph
        return max(len(p) for p in paragraph_parts(article.text))

    short, middle, longest = sorted((d.article for d in load_seed_documents()[:3]), key=longest_paragraph)
    assert longest_paragraph(middle) < longest_paragraph(longest)
    articles = [short, longest, middle]
    saved = extractor.nlp.max_length
    extractor.nlp.max_length = longest_paragraph(longest) - 1  # one paragraph of that article is now "too long"
    try:
        results = process_texts(
            articles, origin="seed", topic=None, claims=claims, relevance_threshold=0.0, outlets=None
        )
    finally:
        extractor.nlp.max_length = saved
    assert isinstance(results[1], Failure) and results[1].stage == "claims" and "E088" in results[1].error
    assert results[1].target == articles[1].url
    for result in (results[0], results[2]):
        assert isinstance(result, ProcessedArticle) and result.claims


def test_paragraphs_are_parsed_apart_and_joined_back_into_the_whole_text(extractor):
    """The model sees paragraphs (its memory bounded by the token budget); the claim rules see one Doc
    with the text, offsets, sentences and entities of the whole."""
    texts = [p.read_text(encoding="utf-8") for p in sorted(SEED_DIR.glob("*.txt"))[:2]]
    with extractor.nlp.memory_zone():
        parsed = list(extractor.parse(texts, tokens_per_batch=50))
        assert [number for number, _ in parsed] == [0, 1]
        for (_, doc), text in zip(parsed, texts, strict=True):
            assert doc.text == text
            starts = {sent.start_char for sent in doc.sents}
            paragraph_starts = [m.end() for m in re.finditer(r"\n(?=\S)", text)]
            assert len(paragraph_starts) > 3 and all(start in starts for start in paragraph_starts)
            assert doc.ents and all("\n" not in ent.text for ent in doc.ents)
            assert doc.has_annotation("DEP")
            paragraph = [text.count("\n", 0, token.idx) for token in doc]
            assert all(paragraph[token.head.i] == paragraph[token.i] for token in doc if not token.is_space)


def test_paragraph_pieces_end_at_sentence_ends_and_join_back(extractor):
    nlp = extractor.nlp
    sentences = [f"Officials in region {i} said {i * 10} men were called up this week." for i in range(30)]
    paragraph = nlp.make_doc(" ".join(sentences))
    pieces = paragraph_pieces(paragraph, 40)
    assert len(pieces) > 5 and all(len(piece) <= 40 for piece in pieces)
    assert "".join(piece.text_with_ws for piece in pieces) == paragraph.text
    assert all(piece.text.rstrip().endswith("week.") for piece in pieces)  # every cut after a sentence end
    quoted = nlp.make_doc('He said: "We will not stop." ' * 20)
    assert all(p.text.endswith('stop." ') for p in paragraph_pieces(quoted, 25)[:-1])  # the quote stays whole
    clauses = nlp.make_doc(", ".join(f"clause {i} of a list" for i in range(60)))
    assert all(p.text.endswith(", ") for p in paragraph_pieces(clauses, 32)[:-1])  # no sentence end: a comma
    unbroken = nlp.make_doc("-".join(["x"] * 120))  # no space at all: hard cuts
    hard = [len(p) for p in paragraph_pieces(unbroken, 100)]
    assert hard[:-1] == [100] * (len(hard) - 1) and sum(hard) == len(unbroken) and len(hard) > 1
    assert paragraph_pieces(paragraph, 10**6) == [paragraph]


def test_a_paragraph_over_the_budget_is_parsed_in_pieces_with_the_claims_of_the_whole(extractor):
    """A page whose text comes out as one long paragraph must not set the worker's peak (the parser's
    memory grows with the tokens it is given at once): it is parsed in pieces cut at sentence ends,
    and the claims are those of the paragraph parsed whole."""
    seeds = [p.read_text(encoding="utf-8") for p in sorted(SEED_DIR.glob("*.txt"))]
    text = " ".join(line.strip() for seed in seeds for line in seed.splitlines() if line.strip())
    assert len(extractor.nlp.make_doc(text)) > 2000

    given: list[int] = []  # the length of every Doc the model is given (observed; the real pipe runs)
    pipe = extractor.nlp.pipe

    def observed_pipe(docs, **kwargs):
        docs = list(docs)
        given.extend(len(doc) for doc in docs)
        return pipe(docs, **kwargs)

    def claims(max_paragraph_tokens: int) -> list[tuple]:
        given.clear()
        extractor.nlp.pipe = observed_pipe
        try:
            with extractor.nlp.memory_zone():
                ((_, doc),) = extractor.parse([text], max_paragraph_tokens=max_paragraph_tokens)
                assert doc.text == text
                return [(c.start, c.end, c.claimant, c.cue, c.verification) for c in claims_from_doc(doc)]
        finally:
            extractor.nlp.pipe = pipe

    whole = claims(10**6)
    assert len(whole) > 20 and max(given) > 2000
    assert claims(500) == whole
    assert max(given) <= 500 and len(given) >= 5
    assert [(c.start, c.end, c.claimant) for c in extractor.extract(text)] == [c[:3] for c in whole]


def test_claims_come_out_text_by_text_while_later_texts_are_still_unread(extractor):
    """A worker stores each article as its claims come out: the extractor draws texts lazily, one at a
    time, instead of reading (and holding) the whole batch first. Each text is parsed in a memory zone
    of its own: once its claims are out, the strings spaCy made for it are gone and the model is free."""
    coined = "Zorvashkin"  # a surname the model's vocabulary cannot already hold
    texts = [p.read_text(encoding="utf-8") for p in sorted(SEED_DIR.glob("*.txt"))]
    texts[0] = texts[0].replace("\n", f" {coined} said the draft would go on.\n", 1)
    expected = extractor.extract_many(texts)
    assert any(c.claimant == coined for c in expected[0])
    assert coined not in extractor.nlp.vocab.strings
    drawn: list[int] = []

    def source():
        for number, text in enumerate(texts):
            drawn.append(number)
            yield text

    stream = extractor.extract_each(source())
    first = next(stream)
    assert first == expected[0]
    assert drawn == [0]
    assert not extractor.nlp.vocab.in_memory_zone and coined not in extractor.nlp.vocab.strings
    assert extractor.extract(texts[1]) == expected[1]  # the model can be used between texts
    rest = list(stream)
    assert drawn == list(range(len(texts))) and [first, *rest] == expected


def test_a_failing_source_is_passed_on_and_not_mistaken_for_a_broken_text(extractor):
    """The one-by-one fallback is for texts that break the model; an error in the texts' own iterable
    (a bug upstream) must surface, not silently end the batch early."""
    from extractors.pipeline import claims_stream

    text = sorted(SEED_DIR.glob("*.txt"))[0].read_text(encoding="utf-8")
    came_out = []

    def source():
        yield "first", text
        raise LookupError("upstream bug")

    with pytest.raises(LookupError, match="upstream bug"):
        for key, found in claims_stream(extractor, source()):
            came_out.append((key, found))
    assert all(not isinstance(found, Exception) for _, found in came_out)  # no text was blamed for it
    assert list(claims_stream(extractor, [("again", text)]))[0][1] == extractor.extract(text)  # model intact


def test_the_model_does_not_grow_with_the_distinct_words_it_has_seen(extractor):
    """A long-running worker meets names and numbers no earlier article had. Memory zones free the
    lexemes made for them, but not the cells of the index that held them: without emptying it after
    each text, 10,000 new words grew the model's memory by ~280 KiB here, and it kept growing."""
    import gc
    import random
    import string
    import tracemalloc

    rng = random.Random(5)

    def coined() -> str:
        return "".join(rng.choice(string.ascii_lowercase) for _ in range(9)).capitalize()

    def texts(count: int, words: int) -> list[str]:
        return [
            f"The ministry said that {', '.join(coined() for _ in range(words))} were called up.\n"
            for _ in range(count)
        ]

    list(extractor.extract_each(texts(10, 30)))  # the model's lazy parts, before counting
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        claimants = {c.claimant for found in extractor.extract_each(texts(200, 50)) for c in found}
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert claimants == {"ministry"}
    assert grown < 96 * 1024, f"the model kept {grown / 1024:.0f} KiB after 10,000 words it had not seen"


def test_the_string_index_is_compacted_in_place_not_doubled(extractor):
    """The string store's map keeps a cell for every string a memory zone freed; the extractor rebuilds
    it at the same size once those cells take an eighth of it, instead of letting it double (4 -> 8 MiB
    for this model). The model's own strings stay where they were and claims do not change."""
    import random
    import string

    from extractors.claims.nlp import compact_string_index

    nlp, strings = extractor.nlp, extractor.nlp.vocab.strings
    text = next(iter(sorted(SEED_DIR.glob("*.txt")))).read_text(encoding="utf-8")
    expected = extractor.extract(text)
    capacity, held = strings._map.capacity, len(strings)
    rng = random.Random(9)
    compactions = 0
    for _ in range(60):  # ~100,000 strings the model does not hold: its map would double without compaction
        coined = " ".join("".join(rng.choice(string.ascii_letters) for _ in range(10)) for _ in range(600))
        with nlp.memory_zone():
            nlp.make_doc(coined)
        compactions += compact_string_index(nlp.vocab)
    assert compactions >= 1
    assert strings._map.capacity == capacity and len(strings) == held
    assert all(strings[strings[word]] == word for word in ("ministry", "said", "recruitment"))
    assert extractor.extract(text) == expected
    with nlp.memory_zone(), pytest.raises(RuntimeError, match="outside a memory zone"):
        compact_string_index(nlp.vocab)


def test_extracting_claims_interns_no_string_per_text(extractor, monkeypatch):
    """CPython keeps interned strings in one table whose cells, once freed, are reused only when the
    table resizes, which sizes it to three times its live strings: a string interned anew for each text
    and then freed makes a long run resize it (1.8 -> 3.7 MiB with a worker's ~80,000 strings) where a
    short one does not. Emptying the lexeme index after every text did that through pathlib, which
    interns a path's parts (2 a text, a step ~2,700 articles into a run)."""
    import sys

    text = next(iter(sorted(SEED_DIR.glob("*.txt")))).read_text(encoding="utf-8")
    list(extractor.extract_each([text]))  # the model's lazy parts first
    interned: list[str] = []
    intern = sys.intern

    def counting_intern(string: str) -> str:
        interned.append(string)
        return intern(string)

    monkeypatch.setattr(sys, "intern", counting_intern)
    claims = list(extractor.extract_each([text] * 20))
    assert len(claims) == 20 and claims[0]
    assert interned == [], f"interned for 20 texts: {sorted(set(interned))}"
